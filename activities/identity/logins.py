"""Password login sessions (cookie + CSRF token) and per-account / per-IP rate limits.

Limits live in the database so every API replica counts the same failures.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import delete, func
from sqlmodel import Session, select

from activities.db.models import AuthSession, LoginAttempt, User, utcnow
from activities.errors import DomainError, Forbidden, Unauthorized
from activities.identity import passwords
from activities.audit.trail import audit
from activities.identity.principals import BYPASS_HAS_NO_CREDENTIALS, Principal, principal_for
from activities.secrets.tokens import hash_token

SESSION_TTL = timedelta(hours=12)
WINDOW = timedelta(minutes=5)
MAX_FAILURES_PER_ACCOUNT = 5
MAX_FAILURES_PER_IP = 20


class TooManyAttempts(DomainError):
    status_code = 429

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


def _check_rate(session: Session, account: str, ip: str | None) -> None:
    since = utcnow() - WINDOW
    session.exec(delete(LoginAttempt).where(LoginAttempt.created_at < since))  # type: ignore[call-overload]
    per_account = session.exec(select(func.count()).select_from(LoginAttempt)
                               .where(LoginAttempt.account == account, LoginAttempt.created_at >= since)).one()
    per_ip = session.exec(select(func.count()).select_from(LoginAttempt)
                          .where(LoginAttempt.ip == ip, LoginAttempt.created_at >= since)).one() if ip else 0
    if per_account >= MAX_FAILURES_PER_ACCOUNT or per_ip >= MAX_FAILURES_PER_IP:
        raise TooManyAttempts("too many failed logins; try again later", int(WINDOW.total_seconds()))


def record_failure(session: Session, account: str, ip: str | None, reason: str, method: str = "password") -> None:
    session.add(LoginAttempt(account=account.lower(), ip=ip))
    audit(session, account, "auth.login_failure", "user", None, {"reason": reason, "method": method}, ip=ip)


def check_rate(session: Session, account: str, ip: str | None) -> None:
    _check_rate(session, account.lower(), ip)


def password_login(session: Session, username: str, password: str, ip: str | None) -> User:
    """Verify a local password. Failures are recorded (the caller commits) and say nothing specific."""
    check_rate(session, username, ip)
    user = session.exec(select(User).where(User.username == username)).first()
    local = user is not None and user.auth_source == "local"  # SSO and service accounts have no password
    ok = passwords.verify(user.password_hash if local else None, password)  # the same cost either way
    if not ok or user is None or not user.is_active:
        reason = ("not a local account" if user is not None and not local
                  else "bad credentials" if not ok or user is None else "inactive")
        record_failure(session, username, ip, reason)
        raise Unauthorized("invalid username or password")
    return user


def open_session(session: Session, user: User, ip: str | None, user_agent: str | None,
                 method: str = "password") -> tuple[str, Principal]:
    """Start a browser session: returns (cookie token, principal with its CSRF token)."""
    if user.auth_source == "bypass":  # the internal-network identity: never reached by a login, refused if it were
        raise Forbidden(BYPASS_HAS_NO_CREDENTIALS)
    token = secrets.token_urlsafe(32)
    auth = AuthSession(id=hash_token(token), user_id=user.id, csrf_token=secrets.token_urlsafe(24), ip=ip,
                       user_agent=(user_agent or "")[:300], expires_at=utcnow() + SESSION_TTL)
    session.add(auth)
    user.last_login_at = utcnow()
    session.add(user)
    audit(session, user.username, "auth.login", "user", user.id, {"method": method}, ip=ip)
    principal = principal_for(session, user, via="session", session_id=auth.id, csrf_token=auth.csrf_token)
    return token, principal


def revoke_sessions(session: Session, user_id: str) -> None:
    """End every open login session of an account (password changed, account deactivated)."""
    for row in session.exec(select(AuthSession).where(AuthSession.user_id == user_id,
                                                      AuthSession.revoked_at == None)):  # noqa: E711
        row.revoked_at = utcnow()
        session.add(row)


def close_session(session: Session, principal: Principal, ip: str | None) -> None:
    if principal.session_id:
        auth = session.get(AuthSession, principal.session_id)
        if auth is not None and auth.revoked_at is None:
            auth.revoked_at = utcnow()
            session.add(auth)
    audit(session, principal.username, "auth.logout", "user", principal.user_id, ip=ip)
