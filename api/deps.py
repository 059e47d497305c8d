"""FastAPI dependencies: the single place requests are authenticated, authorized and given a session."""

from __future__ import annotations

import logging
import secrets
from typing import Annotated, Callable, Iterator

from fastapi import Depends, Header, Request, Response
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from activities.db.models import Worker
from activities.errors import Forbidden, Unauthorized
from activities.identity import principals
from activities.capacity import workers
from activities.identity.logins import SESSION_TTL
from activities.identity.principals import Principal
from api import network
from activities.settings import Settings
from api.state import AppState

log = logging.getLogger("simpletuner.auth")

SESSION_COOKIE = "st_session"
CSRF_HEADER = "X-CSRF-Token"


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    """The login session's cookie, as every sign-in sets it (password, SSO, the console's API key)."""
    response.set_cookie(SESSION_COOKIE, token, max_age=int(SESSION_TTL.total_seconds()), httponly=True,
                        samesite="lax", secure=request.url.scheme == "https", path="/")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_state(request: Request) -> AppState:
    return request.app.state.core


def get_session(request: Request, state: Annotated[AppState, Depends(get_state)]) -> Iterator[Session]:
    """The request's session: read-only for GET/HEAD/OPTIONS (SQLite's write lock is never taken)."""
    with (state.db.read_session() if request.method in SAFE_METHODS else state.db.session()) as session:
        yield session


StateDep = Annotated[AppState, Depends(get_state)]
SessionDep = Annotated[Session, Depends(get_session)]


ANONYMOUS = Principal(user_id="anonymous", username="anonymous", levels=(), permissions=frozenset(), via="bypass")


def current_principal(request: Request, state: StateDep,
                      authorization: Annotated[str | None, Header()] = None) -> Principal:
    """Bearer API key, else the login session cookie (writes then need the CSRF header), else
    the configured bypasses: health/metrics paths, internal networks, single-user mode.

    Uses its own short read-only session so no transaction stays open while a route streams or waits."""
    with state.db.read_session() as session:
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized("Authorization header must be 'Bearer <api key>'")
            return principals.authenticate_bearer(session, token.strip())
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return _without_credentials(request, state, session)
        principal = principals.authenticate_session(session, cookie)
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not secrets.compare_digest(sent, principal.csrf_token or ""):
            raise Forbidden(f"missing or wrong {CSRF_HEADER} header for a session-authenticated request")
    return principal


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def single_user_request(settings: Settings, request: Request) -> bool:
    """Single-user mode applies: it is on and the caller is this machine, not through a proxy (a
    proxied request is not the local user), asking for a loopback name (a page of another site whose
    name was made to resolve to this machine is not the local user either)."""
    return settings.auth.single_user_mode and network.is_loopback_peer(request) \
        and not network.has_proxy_headers(request.headers) and request.url.hostname in LOOPBACK_HOSTS


def _without_credentials(request: Request, state: AppState, session: Session) -> Principal:
    settings = state.settings
    if any(request.url.path.startswith(p) for p in settings.auth.bypass_paths):
        return ANONYMOUS
    if network.is_internal(request):
        log.info("Auth bypassed for IP %s (acting as %s)", network.client_ip(request), settings.network.bypass_identity)
        return principals.service_principal(session, settings.network.bypass_identity)
    if single_user_request(settings, request):
        return principals.single_user_principal(session)
    raise Unauthorized("missing Authorization: Bearer header or login session")


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def optional_principal(request: Request, state: StateDep,
                       authorization: Annotated[str | None, Header()] = None) -> Principal | None:
    """For routes that answer everyone (health): the caller if it authenticates, else None (also when the
    database cannot tell, so a health probe still gets its answer)."""
    try:
        return current_principal(request, state, authorization)
    except Unauthorized:
        return None
    except SQLAlchemyError as exc:
        log.warning("cannot authenticate the caller of %s: %s", request.url.path, exc.__class__.__name__)
        return None


OptionalPrincipalDep = Annotated[Principal | None, Depends(optional_principal)]


def require(permission: str) -> Callable[[Principal], Principal]:
    def check(principal: PrincipalDep) -> Principal:
        principal.require(permission)
        return principal

    check.required_permission = permission  # type: ignore[attr-defined]  (read by the route audit test)
    return check


def credential_holder(principal: PrincipalDep) -> Principal:
    """A caller that may mint a credential of its own (API key): not the internal-network bypass identity."""
    principals.ensure_may_hold_credentials(principal)
    return principal


CredentialHolderDep = Annotated[Principal, Depends(credential_holder)]
UsersAdminDep = Annotated[Principal, Depends(require("admin.users"))]
WorkersAdminDep = Annotated[Principal, Depends(require("admin.workers"))]


def current_worker(state: StateDep, x_worker_token: Annotated[str | None, Header()] = None) -> Worker:
    """The agent presenting X-Worker-Token (a detached row: re-read it to change it)."""
    with state.db.read_session() as session:
        return workers.authenticate(session, x_worker_token)


WorkerDep = Annotated[Worker, Depends(current_worker)]


client_ip = network.client_ip  # the one place the caller's address is decided
