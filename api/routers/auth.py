"""Password login/logout (session cookie + CSRF token) and personal API keys."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import ConfigDict, Field

from activities.request_body import RequestBody
from activities.errors import Unauthorized
from activities.identity import api_keys
from activities.identity import logins
from activities.identity import users
from activities.identity.api_keys import KeyCreate
from activities.identity.logins import SESSION_TTL
from api.deps import (CSRF_HEADER, SESSION_COOKIE, CredentialHolderDep, PrincipalDep, SessionDep, client_ip,
                      set_session_cookie)
from api.schemas.auth import ApiKeyCreated, ApiKeyList, BearerLogin, LoggedOut, Revoked, SessionLogin

router = APIRouter(prefix="/api/auth", tags=["auth"])


class LoginBody(RequestBody):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1024)
    mode: Literal["cookie", "bearer"] = "cookie"  # browser session, or a token for Authorization: Bearer


@router.post("/login", response_model=SessionLogin | BearerLogin)
def login(body: LoginBody, session: SessionDep, request: Request, response: Response) -> dict:
    ip = client_ip(request)
    try:
        user = logins.password_login(session, body.username, body.password, ip)
    except Unauthorized:
        session.commit()  # the failure counts toward the rate limit and is audited
        raise
    token, principal = logins.open_session(session, user, ip, request.headers.get("user-agent"))
    session.commit()
    if body.mode == "bearer":  # no cookie, so no CSRF exposure: the client sends the token itself
        return {"user": users.to_dict(session, user), "access_token": token, "token_type": "bearer",
                "expires_in": int(SESSION_TTL.total_seconds())}
    set_session_cookie(request, response, token)
    return {"user": users.to_dict(session, user), "csrf_token": principal.csrf_token, "csrf_header": CSRF_HEADER,
            "expires_in": int(SESSION_TTL.total_seconds())}


@router.post("/logout", response_model=LoggedOut)
def logout(session: SessionDep, principal: PrincipalDep, request: Request, response: Response) -> dict:
    logins.close_session(session, principal, client_ip(request))
    session.commit()
    response.delete_cookie(SESSION_COOKIE, path="/")
    return {"logged_out": True}


@router.get("/api-keys", response_model=ApiKeyList)
def list_keys(session: SessionDep, principal: PrincipalDep) -> dict:
    return {"api_keys": [api_keys.to_dict(k) for k in api_keys.list_for(session, principal.user_id)]}


@router.post("/api-keys", status_code=201, response_model=ApiKeyCreated)
def create_key(body: KeyCreate, session: SessionDep, principal: CredentialHolderDep, request: Request) -> dict:
    key, token = api_keys.create(session, principal, body, client_ip(request))
    session.commit()
    return {**api_keys.to_dict(key), "key": token}


@router.delete("/api-keys/{key_id}", response_model=Revoked)
def revoke_key(key_id: str, session: SessionDep, principal: PrincipalDep, request: Request) -> dict:
    api_keys.revoke(session, principal, key_id, client_ip(request))
    session.commit()
    return {"revoked": key_id}
