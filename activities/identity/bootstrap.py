"""First start and fixed identities: the bootstrap admin and its key, levels of old accounts, and the
identity internal-network callers act as."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from activities.audit.trail import audit
from activities.db.models import ApiKey, User, UserLevel
from activities.errors import Conflict
from activities.identity.permissions import LEVEL_PRIORITY
from activities.identity.users import set_levels
from activities.secrets.tokens import hash_token, new_id, new_token

log = logging.getLogger(__name__)


def bootstrap_admin(session_factory, token_path: Path, configured_token: str | None) -> bool:
    """On an empty database create the admin account and its API key. Returns True if it did.

    The key is ``configured_token`` when given, else generated and written to ``token_path`` (mode
    0600) *before* the transaction that makes it valid commits, so a crash can never leave a valid key
    nobody knows. Processes on one host bootstrap one at a time (a lock file beside the token); a
    process that loses the race on a shared database removes the file it wrote. The key itself is
    never logged.
    """
    token_path.parent.mkdir(parents=True, exist_ok=True)
    with _bootstrap_lock(token_path), session_factory() as session:
        if session.exec(select(User)).first() is not None:
            return False
        token = configured_token or new_token("st")
        admin = User(id=new_id("u"), username="admin", level="admin")
        session.add(admin)
        session.flush()
        session.add(UserLevel(user_id=admin.id, level="admin"))
        session.add(ApiKey(id=new_id("k"), user_id=admin.id, name="bootstrap", key_hash=hash_token(token),
                           prefix=token[:8]))
        audit(session, "system:bootstrap", "user.created", "user", admin.id, {"username": "admin", "levels": ["admin"]})
        if not configured_token:
            _write_secret(token_path, token)
        try:
            session.commit()
        except IntegrityError:  # another process bootstrapped the shared database at the same time
            session.rollback()
            if not configured_token:
                token_path.unlink(missing_ok=True)
            return False
    if configured_token:
        log.info("bootstrap admin created with the key from SIMPLETUNER_ADMIN_TOKEN")
    else:
        log.info("bootstrap admin created; its API key was written to %s", token_path)
    return True


@contextlib.contextmanager
def _bootstrap_lock(token_path: Path):
    lock = os.open(token_path.with_name(f".{token_path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
    finally:
        os.close(lock)


def _write_secret(path: Path, value: str) -> None:
    """Write ``value`` durably with mode 0600 (a temporary file renamed into place)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def backfill_levels(session_factory) -> int:
    """Accounts made before levels had their own table get their stored level as a level row."""
    with session_factory() as session:
        bare = list(session.exec(select(User).where(~col(User.id).in_(select(UserLevel.user_id)))))
        for user in bare:
            session.add(UserLevel(user_id=user.id, level=user.level if user.level in LEVEL_PRIORITY else "viewer"))
        session.commit()
    return len(bare)


def ensure_service_identity(session_factory, username: str, level: str) -> None:
    """The account internal-network callers act as: no password, the configured level."""
    with session_factory() as session:
        user = session.exec(select(User).where(User.username == username)).first()
        if user is None:
            user = User(id=new_id("u"), username=username, auth_source="bypass", display_name="internal networks")
            session.add(user)
            session.flush()
            audit(session, "system:network", "user.created", "user", user.id, {"username": username, "levels": [level]})
        elif user.auth_source != "bypass":
            raise Conflict(f"network.bypass_identity {username!r} is an existing {user.auth_source} account")
        set_levels(session, user, [level])
        session.commit()
