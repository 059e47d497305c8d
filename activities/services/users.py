"""Accounts and API keys. This issue's scope: the bootstrap admin and bearer-key authentication."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from activities.db.models import ApiKey, User, utcnow
from activities.errors import Unauthorized
from activities.services.audit import audit
from activities.services.secrets import hash_token, new_id, new_token

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Principal:
    """Who is calling. Extend here (levels, permissions) rather than in routes."""
    user_id: str
    username: str
    level: str
    key_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.level == "admin"


def bootstrap_admin(session_factory, token_path: Path, configured_token: str | None) -> bool:
    """On an empty database create the admin account and its key. Returns True if it created them.

    The key is ``configured_token`` when given, else generated and written once to ``token_path``
    (mode 0600). The key itself is never logged.
    """
    with session_factory() as session:
        if session.exec(select(User)).first() is not None:
            return False
        token = configured_token or new_token("st")
        admin = User(id=new_id("u"), username="admin", level="admin")
        key = ApiKey(id=new_id("k"), user_id=admin.id, name="bootstrap", key_hash=hash_token(token),
                     prefix=token[:8])
        session.add(admin)
        session.flush()
        session.add(key)
        audit(session, "system:bootstrap", "user.created", "user", admin.id, {"username": "admin", "level": "admin"})
        try:
            session.commit()
        except IntegrityError:  # another process bootstrapped at the same time
            session.rollback()
            return False
    if not configured_token:
        token_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(token_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(token + "\n")
        os.chmod(token_path, 0o600)
        log.info("bootstrap admin created; its API key was written to %s", token_path)
    else:
        log.info("bootstrap admin created with the key from SIMPLETUNER_ADMIN_TOKEN")
    return True


def authenticate_key(session: Session, token: str) -> Principal:
    key = session.exec(select(ApiKey).where(ApiKey.key_hash == hash_token(token))).first()
    if key is None or key.revoked_at is not None:
        raise Unauthorized("invalid API key")
    if key.expires_at is not None and key.expires_at <= utcnow():
        raise Unauthorized("API key expired")
    user = session.get(User, key.user_id)
    if user is None or not user.is_active:
        raise Unauthorized("account disabled")
    return Principal(user_id=user.id, username=user.username, level=user.level, key_id=key.id)
