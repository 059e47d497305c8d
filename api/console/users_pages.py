"""Console pages for accounts (permission ``admin.users``): the list, a new account, and one
account's page with its levels, permission overrides and activation, through the same domain
functions (``activities.identity.users``) and audit entries as ``/api/users``."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from activities.errors import DomainError, InvalidInput
from activities.identity import principals, users
from activities.identity.permissions import LEVEL_DESCRIPTIONS, LEVEL_PRIORITY, PERMISSIONS
from activities.identity.users import UserCreate
from activities.paging import PageRequest
from api.console import sections
from api.console.pages import _blank, _db, _see_other, _write, page, pager, posted, render, signed_in
from api.console.pages import validation_messages
from api.deps import client_ip

router = APIRouter(include_in_schema=False)
PERMISSION = "admin.users"
LEVELS = tuple(LEVEL_PRIORITY)
sections.section("/admin/users", "Users", "Accounts, their levels and permission overrides; create, activate or "
                 "deactivate.", PERMISSION)


def _url(user_id: str) -> str:
    return f"/admin/users/{quote(user_id, safe='')}"


@router.get("/admin/users")
@page
async def users_list(request: Request, cursor: str | None = None) -> Response:
    principal = signed_in(request)
    principal.require(PERMISSION)

    def load(session):
        found = users.list_page(session, PageRequest(limit=100, cursor=_blank(cursor)))
        return [users.to_dict(session, u) for u in found.rows], found
    rows, found = await _db(request, load)
    return render(request, principal, "admin_users.html", users=rows, **pager("/admin/users", found, cursor))


def _new_form(request: Request, principal, status: int = 200, values: dict[str, Any] | None = None,
              errors: list[str] | None = None) -> Response:
    values = {k: v for k, v in (values or {"level": "researcher", "is_active": "yes"}).items() if k != "password"}
    return render(request, principal, "admin_user_new.html", status=status, values=values, errors=errors or [],
                  levels=LEVELS, level_descriptions=LEVEL_DESCRIPTIONS)


@router.get("/admin/users/new")
@page
async def user_new_form(request: Request) -> Response:
    principal = signed_in(request)
    principal.require(PERMISSION)
    return _new_form(request, principal)


@router.post("/admin/users/new")
@page
async def user_create(request: Request) -> Response:
    principal, form = await posted(request, PERMISSION)
    try:
        body = UserCreate.model_validate({
            "username": form.get("username", "").strip(), "email": _blank(form.get("email")),
            "display_name": _blank(form.get("display_name")), "password": form.get("password") or None,
            "level_names": [form.get("level", "")], "is_active": form.get("is_active") == "yes"})

        def create(session) -> str:
            return users.create(session, body, principal, client_ip(request)).id
        user_id = await _write(request, create)
    except ValidationError as exc:
        return _new_form(request, principal, 422, form, validation_messages(exc))
    except DomainError as exc:
        return _new_form(request, principal, exc.status_code, form, [exc.detail])
    return _see_other(_url(user_id))


async def _user_page(request: Request, principal, user_id: str, status: int = 200,
                     errors: list[str] | None = None) -> Response:
    user = await _db(request, lambda s: users.to_dict(s, users.get(s, user_id)))
    granted = {o["permission_name"]: o["granted"] for o in user["permission_overrides"]}
    return render(request, principal, "admin_user.html", status=status, user=user, errors=errors or [],
                  levels=[lv for lv in LEVELS if lv not in user["level_names"]], overrides=granted,
                  permissions=[{"name": n, "category": c, "description": d} for n, (c, d) in PERMISSIONS.items()],
                  me=user["id"] == principal.user_id)


@router.get("/admin/users/{user_id}")
@page
async def user_detail(request: Request, user_id: str) -> Response:
    principal = signed_in(request)
    principal.require(PERMISSION)
    return await _user_page(request, principal, user_id)


async def _change(request: Request, user_id: str, change) -> Response:
    """A form post that changes the account: done and audited by ``change(session, principal, ip)``,
    then back to its page; a refusal is shown on the page with its status."""
    principal, form = await posted(request, PERMISSION)
    try:
        await _write(request, change, form, principal, client_ip(request))
    except DomainError as exc:
        return await _user_page(request, principal, user_id, exc.status_code, [exc.detail])
    return _see_other(_url(user_id))


@router.post("/admin/users/{user_id}/active")
@page
async def user_set_active(request: Request, user_id: str) -> Response:
    def change(session, form, principal, ip):
        active = {"yes": True, "no": False}.get(form.get("active", ""))
        if active is None:
            raise InvalidInput("active: yes or no")
        users.set_active(session, user_id, active, principal, ip)
    return await _change(request, user_id, change)


@router.post("/admin/users/{user_id}/levels")
@page
async def user_add_level(request: Request, user_id: str) -> Response:
    return await _change(request, user_id, lambda s, form, p, ip: users.add_level(
        s, user_id, form.get("level_name", ""), p, ip))


@router.post("/admin/users/{user_id}/levels/{level_name}/remove")
@page
async def user_remove_level(request: Request, user_id: str, level_name: str) -> Response:
    return await _change(request, user_id, lambda s, form, p, ip: users.remove_level(s, user_id, level_name, p, ip))


@router.post("/admin/users/{user_id}/permissions")
@page
async def user_set_override(request: Request, user_id: str) -> Response:
    def change(session, form, principal, ip):
        name, choice = form.get("permission_name", ""), form.get("override", "")
        if choice == "inherit":
            if name in principals.overrides_of(session, user_id):
                users.remove_override(session, user_id, name, principal, ip)
        elif choice in ("grant", "deny"):
            users.set_override(session, user_id, name, choice == "grant", principal, ip)
        else:
            raise InvalidInput("override: grant, deny or inherit")
    return await _change(request, user_id, change)
