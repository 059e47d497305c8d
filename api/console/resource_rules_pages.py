"""Console pages for resource rules (permission ``admin.users``, as over REST): the list with a form
for a new rule, editing one, deleting one; through the domain functions of the REST routes, with the
same validation and audit entries. Reached from the approval rules page (``/admin/rules``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from activities.errors import InvalidInput
from activities.governance import resource_rules
from activities.governance.resource_rules import RESOURCE_TYPES, RuleBody
from activities.identity.permissions import LEVEL_PRIORITY
from activities.identity.principals import Principal
from api.console.pages import _blank, _db, _see_other, _write, page, posted, render, signed_in, validation_messages
from api.deps import client_ip

router = APIRouter(include_in_schema=False)
BASE = "/admin/rules/resources"
LEVELS = tuple(LEVEL_PRIORITY)
ACTIONS = ("allow", "deny")
DONE = {"created": "Resource rule created.", "saved": "Resource rule saved.", "deleted": "Resource rule deleted."}


def _admin(request: Request) -> Principal:
    principal = signed_in(request)
    principal.require("admin.users")
    return principal


def _url(rule_id: str) -> str:
    return f"{BASE}/{quote(rule_id, safe='')}"


def _values(rule: dict[str, Any]) -> dict[str, str]:
    """A stored rule as the form's fields."""
    return {key: rule[key] or "" for key in ("level", "resource_type", "pattern", "action", "description")}


def _body(form: dict[str, str]) -> RuleBody:
    return RuleBody.model_validate({"level": form.get("level", ""), "resource_type": form.get("resource_type", ""),
                                    "pattern": form.get("pattern", "").strip(), "action": form.get("action", ""),
                                    "description": _blank(form.get("description"))})


def _choices() -> dict[str, Any]:
    return {"levels": LEVELS, "resource_types": RESOURCE_TYPES, "actions": ACTIONS}


async def _list_page(request: Request, principal: Principal, values: dict[str, str], errors: list[str],
                     status: int = 200, notice: str | None = None) -> Response:
    rows = await _db(request, lambda s: [resource_rules.to_dict(r) for r in resource_rules.list_all(s)])
    return render(request, principal, "admin_rules_resources.html", status=status, rules=rows, values=values,
                  errors=errors, notice=notice, **_choices())


def _edit_page(request: Request, principal: Principal, rule_id: str, values: dict[str, str], errors: list[str],
               status: int = 200) -> Response:
    return render(request, principal, "admin_rules_resource.html", status=status, rule_id=rule_id,
                  action=_url(rule_id), values=values, errors=errors, **_choices())


@router.get(BASE)
@page
async def resource_rules_list(request: Request, done: str | None = None) -> Response:
    defaults = {"level": "researcher", "resource_type": "config", "action": "deny"}
    return await _list_page(request, _admin(request), defaults, [], notice=DONE.get(done or ""))


@router.post(BASE)
@page
async def resource_rule_create(request: Request) -> Response:
    principal, form = await posted(request, "admin.users")
    ip = client_ip(request)
    try:
        body = _body(form)
        await _write(request, lambda s: resource_rules.create(s, body, principal, ip).id)
    except ValidationError as exc:
        return await _list_page(request, principal, form, validation_messages(exc), 422)
    except InvalidInput as exc:
        return await _list_page(request, principal, form, [exc.detail], exc.status_code)
    return _see_other(f"{BASE}?" + urlencode({"done": "created"}))


@router.get(BASE + "/{rule_id}")
@page
async def resource_rule_form(request: Request, rule_id: str) -> Response:
    principal = _admin(request)
    rule = await _db(request, lambda s: resource_rules.to_dict(resource_rules.get(s, rule_id)))
    return _edit_page(request, principal, rule_id, _values(rule), [])


@router.post(BASE + "/{rule_id}")
@page
async def resource_rule_save(request: Request, rule_id: str) -> Response:
    principal, form = await posted(request, "admin.users")
    ip = client_ip(request)
    try:
        body = _body(form)
        await _write(request, lambda s: resource_rules.replace(s, rule_id, body, principal, ip).id)
    except ValidationError as exc:
        return _edit_page(request, principal, rule_id, form, validation_messages(exc), 422)
    except InvalidInput as exc:
        return _edit_page(request, principal, rule_id, form, [exc.detail], exc.status_code)
    return _see_other(f"{BASE}?" + urlencode({"done": "saved"}))


@router.post(BASE + "/{rule_id}/delete")
@page
async def resource_rule_delete(request: Request, rule_id: str) -> Response:
    principal, form = await posted(request, "admin.users")
    if form.get("confirm") != "yes":
        rule = await _db(request, lambda s: resource_rules.to_dict(resource_rules.get(s, rule_id)))
        return _edit_page(request, principal, rule_id, _values(rule), ["tick the box to confirm the deletion"], 422)
    ip = client_ip(request)
    await _write(request, resource_rules.delete, rule_id, principal, ip)
    return _see_other(f"{BASE}?" + urlencode({"done": "deleted"}))
