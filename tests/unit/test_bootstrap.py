"""The bootstrap admin's key reaches admin.token before the transaction that makes it valid commits."""

from __future__ import annotations

import stat

from sqlmodel import Session, select

from activities.db.engine import init_db, make_engine
from activities.db.models import ApiKey, User
from activities.identity.bootstrap import bootstrap_admin
from activities.secrets.tokens import hash_token


def test_the_key_is_on_disk_before_it_becomes_valid(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    init_db(engine)
    token_path = tmp_path / "admin.token"
    seen_at_commit: list[str] = []

    class Watching(Session):
        def commit(self) -> None:
            seen_at_commit.append(token_path.read_text().strip() if token_path.exists() else "")
            super().commit()

    assert bootstrap_admin(lambda: Watching(engine, expire_on_commit=False), token_path, None)
    token = token_path.read_text().strip()
    assert seen_at_commit == [token]  # written (complete) before the commit that makes it valid
    assert stat.S_IMODE(token_path.stat().st_mode) == 0o600
    with Session(engine) as s:
        assert s.exec(select(ApiKey)).one().key_hash == hash_token(token)
    assert not bootstrap_admin(lambda: Session(engine), token_path, None)  # only once
    assert token_path.read_text().strip() == token


def test_a_failed_commit_leaves_no_key_file_behind(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    init_db(engine)
    token_path = tmp_path / "admin.token"

    class Crashing(Session):
        def commit(self) -> None:
            raise RuntimeError("the process died here")

    try:
        bootstrap_admin(lambda: Crashing(engine), token_path, None)
    except RuntimeError:
        pass
    with Session(engine) as s:
        assert s.exec(select(User)).first() is None  # nothing is valid: the next start bootstraps again
    assert bootstrap_admin(lambda: Session(engine, expire_on_commit=False), token_path, None)
    with Session(engine) as s:
        assert s.exec(select(ApiKey)).one().key_hash == hash_token(token_path.read_text().strip())
