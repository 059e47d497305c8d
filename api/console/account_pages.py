"""The signed-in person's own account page (``/account``): profile, password and personal API keys,
through the same domain functions and audit entries as ``PATCH /api/users/{id}`` and
``/api/auth/api-keys``. A new key is shown once, in the answer to the form post (``no-store``)."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from activities.errors import DomainError
from activities.identity import api_keys, principals, users
from activities.identity.account_passwords import WrongCurrentPassword
from activities.identity.api_keys import KeyCreate
from activities.identity.principals import Principal
from activities.identity.users import UserPatch
from api.console import sections
from api.console.pages import _blank, _db, _int, _see_other, _write, page, posted, render, signed_in
from api.console.pages import validation_messages
from api.deps import SESSION_COOKIE, client_ip, get_state

router = APIRouter(include_in_schema=False)
NOTICES = {"profile": "Profile saved.", "revoked": "Key revoked."}
sections.section("/account", "Your account", "Your profile, password and personal API keys.", None)


def _load(session, principal: Principal) -> dict[str, Any]:
    return {"user": users.to_dict(session, users.get(session, principal.user_id)),
            "keys": [api_keys.to_dict(k) for k in api_keys.list_for(session, principal.user_id)],
            "may_hold_keys": _may_hold_keys(principal)}


def _may_hold_keys(principal: Principal) -> bool:
    try:
        principals.ensure_may_hold_credentials(principal)
        return True
    except DomainError:
        return False


async def _render(request: Request, principal: Principal, status: int = 200, errors: list[str] | None = None,
                  notice: str | None = None, new_key: dict[str, Any] | None = None,
                  values: dict[str, str] | None = None) -> Response:
    context = await _db(request, _load, principal)
    return render(request, principal, "account.html", status=status, errors=errors or [], notice=notice,
                  new_key=new_key, values=values or {}, **context)


@router.get("/account")
@page
async def account(request: Request, done: str | None = None) -> Response:
    return await _render(request, signed_in(request), notice=NOTICES.get(done or ""))


@router.post("/account/profile")
@page
async def account_profile(request: Request) -> Response:
    principal, form = await posted(request)
    try:
        patch = UserPatch.model_validate({"email": _blank(form.get("email")),
                                          "display_name": _blank(form.get("display_name"))})
        await _write(request, users.update, principal.user_id, patch, principal, client_ip(request))
    except ValidationError as exc:
        return await _render(request, principal, 422, validation_messages(exc), values=form)
    except DomainError as exc:
        return await _render(request, principal, exc.status_code, [exc.detail], values=form)
    return _see_other("/account?" + urlencode({"done": "profile"}))


@router.post("/account/password")
@page
async def account_password(request: Request) -> Response:
    principal, form = await posted(request)
    ip = client_ip(request)

    def change(patch: UserPatch) -> None:
        with get_state(request).db.session() as session:
            try:
                users.update(session, principal.user_id, patch, principal, ip)
            except WrongCurrentPassword:
                session.commit()  # the wrong guess counts toward the login rate limit and is audited
                raise
            session.commit()
    try:
        if form.get("password", "") != form.get("password_again", ""):
            return await _render(request, principal, 422, ["The two new passwords differ."])
        patch = UserPatch.model_validate({"password": form.get("password", ""),
                                          "current_password": form.get("current_password", "")})
        await asyncio.to_thread(change, patch)
    except ValidationError as exc:
        return await _render(request, principal, 422, validation_messages(exc))
    except DomainError as exc:
        return await _render(request, principal, exc.status_code, [exc.detail])
    response = _see_other("/sign-in?" + urlencode({"done": "password", "next": "/account"}))
    response.delete_cookie(SESSION_COOKIE, path="/")  # the change ended every session, this one too
    return response


@router.post("/account/keys")
@page
async def account_key_create(request: Request) -> Response:
    principal, form = await posted(request)
    try:
        body = KeyCreate.model_validate({"name": form.get("name", "").strip(),
                                         "expires_in_days": _int(form.get("expires_in_days"), None, 1, 3650,
                                                                 "Expires in days")})

        def create(session) -> dict[str, Any]:
            key, token = api_keys.create(session, principal, body, client_ip(request))
            session.flush()
            return {**api_keys.to_dict(key), "key": token}
        new_key = await _write(request, create)
    except ValidationError as exc:
        return await _render(request, principal, 422, validation_messages(exc), values=form)
    except DomainError as exc:
        return await _render(request, principal, exc.status_code, [exc.detail], values=form)
    return await _render(request, principal, new_key=new_key)  # shown once: this answer is no-store


@router.post("/account/keys/{key_id}/revoke")
@page
async def account_key_revoke(request: Request, key_id: str) -> Response:
    principal, _ = await posted(request)
    try:
        await _write(request, api_keys.revoke, principal, key_id, client_ip(request))
    except DomainError as exc:
        return await _render(request, principal, exc.status_code, [exc.detail])
    return _see_other("/account?" + urlencode({"done": "revoked"}))
