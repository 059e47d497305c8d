"""OAuth state of OIDC logins between /start and /callback.

It lives in the database so any API replica can finish a login another one started; it is consumed
by one conditional DELETE whose row count decides, so a state works once and only in time.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta

from sqlalchemy import delete
from sqlmodel import Session

from activities.db.models import utcnow
from activities.db.models_sso import OAuthState
from activities.identity.sso.oidc_auth import PendingLogin
from activities.secrets.tokens import hash_token

log = logging.getLogger(__name__)
STATE_TTL_ENV = "SIMPLETUNER_OAUTH_STATE_TTL_SECONDS"
DEFAULT_STATE_TTL = 600.0


def state_ttl() -> timedelta:
    raw = os.environ.get(STATE_TTL_ENV, "").strip()
    try:
        seconds = float(raw) if raw else DEFAULT_STATE_TTL
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        log.warning("%s=%r is not a positive number; using %.0f s", STATE_TTL_ENV, raw, DEFAULT_STATE_TTL)
        seconds = DEFAULT_STATE_TTL
    return timedelta(seconds=seconds)


def store_state(session: Session, pending: PendingLogin, return_to: str | None) -> OAuthState:
    now = utcnow()
    purged = session.exec(delete(OAuthState).where(OAuthState.expires_at <= now))  # type: ignore[call-overload]
    if purged.rowcount:
        log.debug("purged %d expired OAuth state(s)", purged.rowcount)
    row = OAuthState(state_hash=hash_token(pending.state), provider=pending.provider,
                     redirect_uri=pending.redirect_uri, nonce=pending.nonce, code_verifier=pending.code_verifier,
                     return_to=return_to, created_at=now, expires_at=now + state_ttl())
    session.add(row)
    return row


def consume_state(session: Session, state: str) -> tuple[PendingLogin, str | None] | None:
    """The pending login of ``state`` if it exists and has not expired, deleted in the same step (the
    DELETE's row count decides, so of two concurrent callbacks only one wins). None otherwise."""
    key = hash_token(state)
    row = session.get(OAuthState, key)
    if row is None:
        return None
    pending = PendingLogin(authorization_url="", state=state, nonce=row.nonce, code_verifier=row.code_verifier,
                           redirect_uri=row.redirect_uri, provider=row.provider)
    return_to = row.return_to
    won = session.exec(delete(OAuthState).where(  # type: ignore[call-overload]
        OAuthState.state_hash == key, OAuthState.expires_at > utcnow())).rowcount == 1
    if not won:
        session.exec(delete(OAuthState).where(OAuthState.state_hash == key))  # type: ignore[call-overload]
        return None
    return pending, return_to
