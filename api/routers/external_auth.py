"""Single sign-on over REST: provider administration (admin.users) and the public LDAP / OIDC logins.

A successful external login opens the same browser session as password login (``st_session`` cookie
plus a CSRF token in the answer). Provider refusals (``ExternalAuthError``) become their own HTTP
status: 401 bad credentials, 403 not mapped, 400 redirect not allowed, 422 misconfigured, 503
unavailable. Network calls to a provider never run while a database transaction is open.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import ConfigDict, Field
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session

from activities.request_body import RequestBody
from activities.errors import BadRequest, Conflict, DomainError, InvalidInput, NotFound, Unavailable
from activities.identity.sso import ldap_auth
from activities.identity import logins
from activities.identity.sso import oauth_state, oidc_auth
from activities.identity.sso import provider_secrets
from activities.identity.sso import providers as sso
from activities.identity import users
from activities.audit.trail import audit
from activities.identity.external_identity import ExternalAuthError, ExternalIdentity
from activities.identity.logins import SESSION_TTL
from activities.identity.principals import Principal
from api import sso_check
from api.deps import CSRF_HEADER, SessionDep, StateDep, UsersAdminDep, client_ip, set_session_cookie
from api.schemas.media import REDIRECT
from api.schemas.auth import SessionLogin
from api.schemas.sso import (LdapTest, OidcLogin, OidcStart, OidcTest, Provider, ProviderList,
                             PublicProviderList)
from api.state import AppState

log = logging.getLogger(__name__)
T = TypeVar("T")
ADMIN = "/api/cloud/external-auth/providers"
PUBLIC = "/api/auth/external"
INVALID_STATE = "invalid or expired OAuth state"
BROWSER_COOKIE = "st_oidc_browser"  # binds an OAuth state to the browser that started the login
BROWSER_COOKIE_PATH = PUBLIC + "/oidc"
@asynccontextmanager
async def _lifespan(app: FastAPI):
    """Runs inside the app's own lifespan, once the database is open and the credentials router has
    installed the cipher (routers start in name order): encrypt secrets an earlier version stored in
    plain text (a failure stops the start: no plaintext secret stays behind), then import the config
    file's block."""
    core: AppState | None = getattr(app.state, "core", None)
    if core is not None:
        await asyncio.to_thread(_encrypt_plaintext_secrets, core)
        await asyncio.to_thread(_import_config_file, core)
    yield


def _encrypt_plaintext_secrets(core: AppState) -> None:
    with core.db.session() as session:
        provider_secrets.encrypt_plaintext(session)
        session.commit()


def _import_config_file(core: AppState) -> None:
    file = str(core.settings.config_file) if core.settings.config_file else None
    try:
        with core.db.session() as session:
            sso.import_config_file(session, core.settings.oidc, file)
            session.commit()
    except IntegrityError:
        log.info("another API replica imported the config file's SSO provider at the same time")
    except SQLAlchemyError:
        log.exception("could not import the SSO provider of %s", file)


router = APIRouter(tags=["external-auth"], lifespan=_lifespan)


class LdapLoginBody(RequestBody):
    model_config = ConfigDict(extra="forbid")
    provider: str = Field(min_length=1, max_length=64)
    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1024)


async def _in_db(core: AppState, fn: Callable[..., T], *args: Any) -> T:
    """``fn(session, *args)`` in a worker thread with its own session, committed when it returns."""
    def run() -> T:
        with core.db.session() as session:
            result = fn(session, *args)
            session.commit()
            return result
    return await asyncio.to_thread(run)


def _fail(session: Session, account: str, ip: str | None, reason: str, method: str, counts: bool) -> None:
    """Audit a refused external login; ``counts`` also adds it to the login rate limit."""
    if counts:
        logins.record_failure(session, account, ip, reason, method=method)
    else:
        audit(session, account, "auth.login_failure", "user", None, {"reason": reason, "method": method}, ip=ip)


def _finish(core: AppState, ident: ExternalIdentity, kind: str, ip: str | None,
            user_agent: str | None) -> tuple[str, Principal, dict]:
    """Provision the account and open a browser session (audited as auth.login with the method)."""
    method = f"{kind}:{ident.provider}"
    with core.db.session() as session:
        try:
            user = sso.provision(session, ident, kind, ip)
            session.flush()
            token, principal = logins.open_session(session, user, ip, user_agent, method=method)
            answer = users.to_dict(session, user)
            session.commit()
        except IntegrityError:  # another replica created the same account in the meantime
            session.rollback()
            raise Conflict("the account was changed by a concurrent login; try again") from None
        except DomainError as exc:
            session.rollback()
            _fail(session, ident.username, ip, exc.detail, method, counts=False)
            session.commit()
            raise
    return token, principal, answer


def _session_answer(request: Request, response: Response, result: tuple[str, Principal, dict],
                    **extra: Any) -> dict:
    token, principal, user = result
    set_session_cookie(request, response, token)
    return {"user": user, "csrf_token": principal.csrf_token, "csrf_header": CSRF_HEADER,
            "expires_in": int(SESSION_TTL.total_seconds()), **extra}


# ---- administration (admin.users) ----------------------------------------------------------------

@router.get(ADMIN, response_model=ProviderList)
def list_providers(session: SessionDep, _: UsersAdminDep) -> dict:
    return {"providers": [sso.to_dict(row) for row in sso.list_all(session)]}


@router.post(ADMIN, status_code=201, response_model=Provider)
def create_provider(body: sso.ProviderCreate, session: SessionDep, principal: UsersAdminDep,
                    request: Request) -> dict:
    row = sso.create(session, body, principal, client_ip(request))
    session.commit()
    return sso.to_dict(row)


@router.get(ADMIN + "/{name}", response_model=Provider)
def get_provider(name: str, session: SessionDep, _: UsersAdminDep) -> dict:
    return sso.to_dict(sso.get(session, name))


@router.patch(ADMIN + "/{name}", response_model=Provider)
def patch_provider(name: str, body: sso.ProviderPatch, session: SessionDep, principal: UsersAdminDep,
                   request: Request) -> dict:
    row = sso.update(session, name, body, principal, client_ip(request))
    session.commit()
    return sso.to_dict(row)


@router.delete(ADMIN + "/{name}", status_code=204)
def delete_provider(name: str, session: SessionDep, principal: UsersAdminDep, request: Request) -> Response:
    sso.delete_provider(session, name, principal, client_ip(request))
    session.commit()
    return Response(status_code=204)


@router.post(ADMIN + "/{name}/test", response_model=LdapTest | OidcTest)
async def test_provider(name: str, core: StateDep, _: UsersAdminDep) -> dict:
    """LDAP: service bind + base DN search. OIDC: fresh discovery + JWKS. Works on disabled providers."""
    try:
        provider_type, result = await sso_check.check(core.db, name, core.settings.outbound_http)
    except ExternalAuthError as exc:
        raise exc from None
    return {"name": name, "provider_type": provider_type, **result}


# ---- public login endpoints ----------------------------------------------------------------------

@router.get(PUBLIC + "/providers", response_model=PublicProviderList)
def public_providers(session: SessionDep) -> dict:
    """What a login page offers: the enabled providers, name and type only."""
    return {"providers": [{"name": row.name, "provider_type": row.provider_type}
                          for row in sso.list_all(session) if row.enabled]}


@router.post(PUBLIC + "/ldap/login", response_model=SessionLogin)
async def ldap_login(body: LdapLoginBody, core: StateDep, request: Request, response: Response) -> dict:
    ip, method = client_ip(request), f"ldap:{body.provider}"

    def begin(session: Session) -> Any:
        _, config = sso.enabled_provider(session, body.provider, "ldap")
        logins.check_rate(session, body.username, ip)
        return config

    config = await _in_db(core, begin)
    try:
        with sso_check.provider_errors(f"LDAP login through {body.provider!r}"):
            ident = await asyncio.to_thread(ldap_auth.authenticate, config, body.provider, body.username,
                                            body.password)
    except ExternalAuthError as exc:
        await _in_db(core, _fail, body.username, ip, exc.detail, method, exc.status_code in (401, 403))
        raise exc from None
    result = await asyncio.to_thread(_finish, core, ident, "ldap", ip, request.headers.get("user-agent"))
    return _session_answer(request, response, result)


def _local_path(value: str) -> bool:
    return value.startswith("/") and not value.startswith("//") and "\\" not in value and len(value) <= 2000


@router.get(PUBLIC + "/oidc/start", response_model=None,
            responses={200: {"model": OidcStart, "description": "With `Accept: application/json`"}, **REDIRECT})
async def oidc_start(provider: str, redirect_uri: str, core: StateDep, request: Request,
                     return_to: str | None = None) -> Any:
    """302 to the provider's login page, or ``{"authorization_url": ...}`` for ``Accept: application/json``."""
    if return_to is not None and not _local_path(return_to):
        raise InvalidInput("return_to: must be a path on this site, such as /jobs")
    _, config = await _in_db(core, sso.enabled_provider, provider, "oidc")
    try:
        with sso_check.provider_errors(f"OIDC login start through {provider!r}"):
            async with sso_check.http_client(core.settings.outbound_http) as http:
                pending = await oidc_auth.begin_login(config, provider, redirect_uri, http)
    except ExternalAuthError as exc:
        raise exc from None
    binding = oauth_state.new_browser_binding()
    try:
        await _in_db(core, oauth_state.store_state, pending, return_to, binding)
    except SQLAlchemyError:
        log.exception("Failed to store OAuth state for provider %s", provider)
        raise Unavailable("could not store the OAuth state; try again") from None
    ttl = int(oauth_state.state_ttl().total_seconds())
    answer: Response = (JSONResponse({"authorization_url": pending.authorization_url, "expires_in": ttl})
                        if "application/json" in request.headers.get("accept", "")
                        else RedirectResponse(pending.authorization_url, status_code=302))
    answer.set_cookie(BROWSER_COOKIE, binding, max_age=ttl + 60, httponly=True, samesite="lax",
                      secure=request.url.scheme == "https", path=BROWSER_COOKIE_PATH)
    return answer


@router.get(PUBLIC + "/oidc/callback", response_model=OidcLogin)
async def oidc_callback(core: StateDep, request: Request, response: Response, state: str | None = None,
                        code: str | None = None) -> dict:
    """The provider's redirect (``code``, ``state``, ``iss`` or ``error``); the state works once, and only
    in the browser that started the login (its binding cookie)."""
    ip, params = client_ip(request), dict(request.query_params)
    try:
        consumed = await _in_db(core, oauth_state.consume_state, state,
                                request.cookies.get(BROWSER_COOKIE)) if state else None
    except BadRequest as exc:  # issued to another browser
        await _in_db(core, _fail, "oidc", ip, exc.detail, "oidc", False)
        raise exc from None
    if consumed is None:
        await _in_db(core, _fail, "oidc", ip, INVALID_STATE, "oidc", False)
        raise DomainError(INVALID_STATE)
    pending, return_to = consumed
    method = f"oidc:{pending.provider}"
    try:
        _, config = await _in_db(core, sso.enabled_provider, pending.provider, "oidc")  # disabled since /start?
        with sso_check.provider_errors(f"OIDC login through {pending.provider!r}"):
            async with sso_check.http_client(core.settings.outbound_http) as http:
                ident = await oidc_auth.complete_login(config, pending, params, http)
    except (ExternalAuthError, NotFound) as exc:
        await _in_db(core, _fail, method, ip, exc.detail, method, False)
        raise exc from None
    result = await asyncio.to_thread(_finish, core, ident, "oidc", ip, request.headers.get("user-agent"))
    response.delete_cookie(BROWSER_COOKIE, path=BROWSER_COOKIE_PATH)
    return _session_answer(request, response, result, return_to=return_to)
