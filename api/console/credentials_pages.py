"""Console pages for cloud-provider credentials: one's own (``/account/credentials``, anyone signed
in) and another person's (``/admin/users/{id}/credentials``, permission ``admin.users``), plus the
stale credentials of everyone (``/admin/credentials``). Set, rotate and delete go through
``activities.secrets.credentials`` like ``/api/users/…/credentials``; a value is never shown, only
its last four characters' fingerprint, its age and whether it is stale."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from activities.errors import DomainError, InvalidInput
from activities.identity import users
from activities.identity.principals import Principal
from activities.secrets import credentials
from activities.secrets.credentials import CredentialValue
from api.console import sections
from api.console.pages import _db, _see_other, _write, page, posted, render, signed_in, validation_messages
from api.deps import client_ip

router = APIRouter(include_in_schema=False)
ADMIN = "admin.users"
NOTICES = {"set": "Credential saved.", "rotated": "Credential rotated.", "deleted": "Credential deleted."}
sections.section("/account/credentials", "Your credentials", "Your own cloud-provider keys: set, rotate, delete; "
                 "their age and whether they are stale.", None)
sections.section("/admin/credentials", "Stale credentials", "Everyone's credentials older than the rotation "
                 "period, oldest first.", ADMIN)


def _base(user_id: str | None) -> str:
    return "/account/credentials" if user_id is None else f"/admin/users/{quote(user_id, safe='')}/credentials"


def _owner(request: Request, user_id: str | None) -> Principal:
    """The signed-in principal, allowed to manage ``user_id``'s credentials (None: their own)."""
    principal = signed_in(request)
    if user_id is not None:
        principal.require(ADMIN)
    return principal


async def _render(request: Request, principal: Principal, user_id: str | None, status: int = 200,
                  errors: list[str] | None = None, notice: str | None = None,
                  values: dict[str, str] | None = None) -> Response:
    owner_id = user_id or principal.user_id

    def load(session) -> tuple[str, list[dict[str, Any]]]:
        return users.get(session, owner_id).username, credentials.list_for(session, owner_id)
    username, rows = await _db(request, load)
    shown = {k: v for k, v in (values or {}).items() if k != "value"}
    return render(request, principal, "credentials.html", status=status, errors=errors or [], notice=notice,
                  values=shown, rows=rows, username=username, own=user_id is None, base=_base(user_id),
                  stale_after_days=credentials.STALE_AFTER_DAYS)


async def _show(request: Request, user_id: str | None, done: str | None) -> Response:
    return await _render(request, _owner(request, user_id), user_id, notice=NOTICES.get(done or ""))


async def _change(request: Request, user_id: str | None, action: str) -> Response:
    principal, form = await posted(request, ADMIN if user_id is not None else None)
    action = _action(action)
    owner_id = user_id or principal.user_id
    ip = client_ip(request)
    try:
        provider, name = form.get("provider", "").strip(), form.get("credential_name", "").strip()
        if action == "deleted":
            await _write(request, credentials.delete, owner_id, provider, name, principal, ip)
        else:
            body = CredentialValue.model_validate({"provider": provider, "credential_name": name,
                                                   "value": form.get("value", "")})
            if action == "rotated":
                await _write(request, credentials.rotate, owner_id, body, principal, ip)
            else:
                await _write(request, lambda s: credentials.set_value(s, owner_id, body, principal, ip)[0].id)
    except ValidationError as exc:
        return await _render(request, principal, user_id, 422, validation_messages(exc), values=form)
    except DomainError as exc:
        return await _render(request, principal, user_id, exc.status_code, [exc.detail], values=form)
    return _see_other(f"{_base(user_id)}?{urlencode({'done': action})}")


def _action(value: str) -> str:
    if value not in ("set", "rotated", "deleted"):
        raise InvalidInput(f"unknown action {value!r}")
    return value


@router.get("/account/credentials")
@page
async def own_credentials(request: Request, done: str | None = None) -> Response:
    return await _show(request, None, done)


@router.post("/account/credentials/{action}")
@page
async def own_credential_change(request: Request, action: str) -> Response:
    return await _change(request, None, action)


@router.get("/admin/users/{user_id}/credentials")
@page
async def user_credentials(request: Request, user_id: str, done: str | None = None) -> Response:
    return await _show(request, user_id, done)


@router.post("/admin/users/{user_id}/credentials/{action}")
@page
async def user_credential_change(request: Request, user_id: str, action: str) -> Response:
    return await _change(request, user_id, action)


@router.get("/admin/credentials")
@page
async def stale_credentials(request: Request) -> Response:
    principal = signed_in(request)
    principal.require(ADMIN)
    rows = await _db(request, credentials.check_stale)
    return render(request, principal, "credentials_stale.html", rows=rows,
                  stale_after_days=credentials.STALE_AFTER_DAYS)
