"""OAuth state of OIDC logins between /start and /callback, bound to the browser that started them.

The state lives in the database so any API replica can finish a login another one started; it is
consumed by one conditional DELETE whose row count decides, so a state works once and only in time.
/start also gives the browser a random binding value in a cookie; only its SHA-256 is stored with the
state, and a callback presenting the state without that cookie is refused (a login started in one
browser cannot be finished in another, so nobody can be signed in to someone else's account by
following a link to the callback).
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from datetime import timedelta

from sqlalchemy import delete
from sqlmodel import Session

from activities.db.models import as_utc, utcnow
from activities.db.models_sso import OAuthState
from activities.errors import BadRequest
from activities.identity.sso.oidc_auth import PendingLogin
from activities.secrets.tokens import hash_token

log = logging.getLogger(__name__)
STATE_TTL_ENV = "SIMPLETUNER_OAUTH_STATE_TTL_SECONDS"
DEFAULT_STATE_TTL = 600.0
OTHER_BROWSER = ("this sign-in was not started in this browser (or a newer sign-in replaced it); "
                 "start it again from this browser")


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


def new_browser_binding() -> str:
    """A fresh random value for the browser's binding cookie (never stored as is)."""
    return secrets.token_urlsafe(32)


def store_state(session: Session, pending: PendingLogin, return_to: str | None, browser_binding: str) -> OAuthState:
    now = utcnow()
    purged = session.exec(delete(OAuthState).where(OAuthState.expires_at <= now))  # type: ignore[call-overload]
    if purged.rowcount:
        log.debug("purged %d expired OAuth state(s)", purged.rowcount)
    row = OAuthState(state_hash=hash_token(pending.state), provider=pending.provider,
                     redirect_uri=pending.redirect_uri, nonce=pending.nonce, code_verifier=pending.code_verifier,
                     return_to=return_to, browser_hash=hash_token(browser_binding), created_at=now,
                     expires_at=now + state_ttl())
    session.add(row)
    return row


def consume_state(session: Session, state: str,
                  browser_binding: str | None) -> tuple[PendingLogin, str | None] | None:
    """The pending login of ``state`` if it exists and has not expired, deleted in the same step (the
    DELETE's row count decides, so of two concurrent callbacks only one wins). None otherwise (an
    expired state is deleted).

    Raises ``BadRequest`` without consuming anything when the state was issued to another browser
    (the binding cookie is missing or different; a state stored without a binding never matches)."""
    key = hash_token(state)
    row = session.get(OAuthState, key)
    if row is None:
        return None
    if as_utc(row.expires_at) <= utcnow():  # expired: say so, whichever browser asks
        session.exec(delete(OAuthState).where(OAuthState.state_hash == key))  # type: ignore[call-overload]
        return None
    if not (browser_binding and row.browser_hash
            and hmac.compare_digest(row.browser_hash, hash_token(browser_binding))):
        raise BadRequest(OTHER_BROWSER)
    pending = PendingLogin(authorization_url="", state=state, nonce=row.nonce, code_verifier=row.code_verifier,
                           redirect_uri=row.redirect_uri, provider=row.provider)
    return_to = row.return_to
    won = session.exec(delete(OAuthState).where(  # type: ignore[call-overload]
        OAuthState.state_hash == key, OAuthState.expires_at > utcnow())).rowcount == 1
    if not won:
        session.exec(delete(OAuthState).where(OAuthState.state_hash == key))  # type: ignore[call-overload]
        return None
    return pending, return_to
