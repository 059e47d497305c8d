"""Who is calling: a user with effective permissions, found from an API key or a login session."""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlmodel import Session, select

from activities.db.models import ApiKey, AuthSession, PermissionOverride, User, UserLevel, utcnow
from activities.errors import Forbidden, Unauthorized
from activities.identity.permissions import LEVEL_PRIORITY, effective_permissions, highest_level
from activities.secrets.tokens import hash_token


@dataclass(frozen=True)
class Principal:
    user_id: str
    username: str
    levels: tuple[str, ...]
    permissions: frozenset[str]
    via: str = "api_key"  # api_key | session
    key_id: str | None = None
    session_id: str | None = None
    csrf_token: str | None = None

    @property
    def level(self) -> str:
        return highest_level(self.levels) or "viewer"

    @property
    def priority(self) -> int:
        return LEVEL_PRIORITY.get(self.level, 0)

    def has(self, permission: str) -> bool:
        return permission in self.permissions

    def require(self, permission: str) -> None:
        if permission not in self.permissions:
            raise Forbidden(f"missing permission {permission!r}")

    def may_see(self, owner_id: str, scope: str = "job.view") -> bool:
        """Own-vs-all: ``<scope>.all`` sees everything, ``<scope>.own`` only one's own."""
        return self.has(f"{scope}.all") or (self.has(f"{scope}.own") and owner_id == self.user_id)


BYPASS_HAS_NO_CREDENTIALS = ("the internal-network identity (network.bypass_auth_for_internal) cannot create API keys "
                             "or login sessions: it is trusted by network address only, and a credential would "
                             "carry that trust outside the internal networks")


def ensure_may_hold_credentials(principal: Principal) -> None:
    """API keys and login sessions are for callers who proved who they are, not for a network bypass."""
    if principal.via == "bypass":
        raise Forbidden(BYPASS_HAS_NO_CREDENTIALS)


def levels_of(session: Session, user_id: str) -> tuple[str, ...]:
    rows = session.exec(select(UserLevel.level).where(UserLevel.user_id == user_id))
    return tuple(sorted(rows, key=lambda lv: -LEVEL_PRIORITY.get(lv, 0)))


def overrides_of(session: Session, user_id: str) -> dict[str, bool]:
    rows = session.exec(select(PermissionOverride).where(PermissionOverride.user_id == user_id))
    return {row.permission: row.granted for row in rows}


def principal_for(session: Session, user: User, **how) -> Principal:
    if not user.is_active:
        raise Unauthorized("account disabled")
    levels = levels_of(session, user.id)
    return Principal(user_id=user.id, username=user.username, levels=levels,
                     permissions=effective_permissions(levels, overrides_of(session, user.id)), **how)


def authenticate_key(session: Session, token: str) -> Principal:
    key = session.exec(select(ApiKey).where(ApiKey.key_hash == hash_token(token))).first()
    if key is None or key.revoked_at is not None:
        raise Unauthorized("invalid API key")
    if key.expires_at is not None and key.expires_at <= utcnow():
        raise Unauthorized("API key expired")
    user = session.get(User, key.user_id)
    if user is None:
        raise Unauthorized("invalid API key")
    return principal_for(session, user, via="api_key", key_id=key.id)


def authenticate_bearer(session: Session, token: str) -> Principal:
    """A bearer is an API key or the token of a login made with ``mode: bearer``."""
    key = session.exec(select(ApiKey.id).where(ApiKey.key_hash == hash_token(token))).first()
    if key is not None:
        return authenticate_key(session, token)
    try:
        principal = authenticate_session(session, token)
    except Unauthorized:
        raise Unauthorized("invalid API key or login token") from None
    return replace(principal, via="bearer_session", csrf_token=None)


def authenticate_session(session: Session, cookie_token: str) -> Principal:
    auth = session.get(AuthSession, hash_token(cookie_token))
    if auth is None or auth.revoked_at is not None or auth.expires_at <= utcnow():
        raise Unauthorized("session expired; log in again")
    user = session.get(User, auth.user_id)
    if user is None:
        raise Unauthorized("session expired; log in again")
    return principal_for(session, user, via="session", session_id=auth.id, csrf_token=auth.csrf_token)


def service_principal(session: Session, username: str) -> Principal:
    """The identity internal-network callers act as (created at API start-up)."""
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        raise Unauthorized(f"service identity {username!r} does not exist")
    return principal_for(session, user, via="bypass")


def single_user_principal(session: Session) -> Principal:
    """Single-user mode: loopback callers act as the first active admin."""
    admin = session.exec(select(User).join(UserLevel, UserLevel.user_id == User.id)
                         .where(UserLevel.level == "admin", User.is_active == True)  # noqa: E712
                         .order_by(User.created_at)).first()
    if admin is None:
        raise Unauthorized("single-user mode: no active admin account")
    return principal_for(session, admin, via="single_user")
