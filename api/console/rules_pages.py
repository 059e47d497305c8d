"""Console pages for approval rules: the list in evaluation order with the six conditions explained
(reading: ``admin.approve``, as over REST, so leads see what they approve against), and the writes
(``admin.config``): a new rule, editing one, enabling or disabling it, deleting it. They go through
the domain functions of the REST routes, with the same validation and audit entries.

Resource rules have their own page (``resource_rules_pages``), linked from the list.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from activities.errors import Conflict, InvalidInput
from activities.governance import approval_rules
from activities.governance.approval_rules import RuleCreate, RulePatch
from activities.identity.permissions import LEVEL_PRIORITY
from activities.identity.principals import Principal
from api.console import sections
from api.console.pages import (_blank, _db, _int, _see_other, _write, page, posted, render, signed_in,
                               validation_messages)
from api.deps import client_ip

router = APIRouter(include_in_schema=False)
sections.section("/admin/rules", "Approval and resource rules",
                 "Which submissions wait for an approver, and which configs, hardware and providers each level "
                 "may use.", "admin.approve")
LEVELS = tuple(LEVEL_PRIORITY)
DONE = {"created": "Rule created.", "saved": "Rule saved.", "enabled": "Rule enabled.", "disabled": "Rule disabled.",
        "deleted": "Rule deleted."}


def _url(rule_id: str) -> str:
    return f"/admin/rules/approval/{quote(rule_id, safe='')}"


def _editor(request: Request) -> Principal:
    principal = signed_in(request)
    principal.require("admin.config")
    return principal


# ---- list ------------------------------------------------------------------------------------------

@router.get("/admin/rules")
@page
async def rules_list(request: Request, done: str | None = None) -> Response:
    principal = signed_in(request)
    principal.require("admin.approve")
    rows = await _db(request, lambda s: [approval_rules.to_dict(r) for r in approval_rules.list_rules(s)])
    return render(request, principal, "admin_rules.html", rules=rows, conditions=approval_rules.conditions(),
                  notice=DONE.get(done or ""), may_edit=principal.has("admin.config"),
                  may_resources=principal.has("admin.users"))


# ---- the form (new and edit) -----------------------------------------------------------------------

def _values(rule: dict[str, Any]) -> dict[str, str]:
    """A stored rule as the form's fields."""
    values = {key: "" if rule[key] is None else str(rule[key])
              for key in ("name", "description", "condition", "threshold", "priority", "required_approver_level",
                          "applies_to_provider", "applies_to_level")}
    values.update({f"exempt_{level}": "yes" for level in rule["exempt_levels"]})
    values["enabled"] = "yes" if rule["enabled"] else ""
    return values


def _fields(form: dict[str, str]) -> dict[str, Any]:
    """The form's fields as the REST body would carry them (blank optional fields are null)."""
    return {"name": form.get("name", ""), "description": _blank(form.get("description")),
            "condition": form.get("condition", ""), "threshold": _blank(form.get("threshold")),
            "priority": _int(form.get("priority"), 0, -1_000_000, 1_000_000, "priority"),
            "required_approver_level": form.get("required_approver_level", ""),
            "exempt_levels": [level for level in LEVELS if form.get(f"exempt_{level}") == "yes"],
            "applies_to_provider": _blank(form.get("applies_to_provider")),
            "applies_to_level": _blank(form.get("applies_to_level")), "enabled": form.get("enabled") == "yes"}


def _form(request: Request, principal: Principal, values: dict[str, str], errors: list[str], status: int = 200,
          rule_id: str | None = None) -> Response:
    return render(request, principal, "admin_rules_form.html", status=status, values=values, errors=errors,
                  rule_id=rule_id, action=_url(rule_id) if rule_id else "/admin/rules/approval/new",
                  conditions=approval_rules.conditions(), levels=LEVELS)


async def _save(request: Request, rule_id: str | None) -> Response:
    principal, form = await posted(request, "admin.config")
    ip = client_ip(request)
    try:
        fields = _fields(form)
        if rule_id is None:
            body = RuleCreate.model_validate(fields)
            await _write(request, lambda s: approval_rules.create(s, body, principal, ip).id)
        else:
            patch = RulePatch.model_validate(fields)
            await _write(request, lambda s: approval_rules.patch(s, rule_id, patch, principal, ip).id)
    except ValidationError as exc:
        return _form(request, principal, form, validation_messages(exc), 422, rule_id)
    except (InvalidInput, Conflict) as exc:
        return _form(request, principal, form, [exc.detail], exc.status_code, rule_id)
    return _see_other("/admin/rules?" + urlencode({"done": "saved" if rule_id else "created"}))


@router.get("/admin/rules/approval/new")
@page
async def new_rule_form(request: Request) -> Response:
    defaults = {"condition": "cost_exceeds", "priority": "0", "required_approver_level": "lead", "enabled": "yes"}
    return _form(request, _editor(request), defaults, [])


@router.post("/admin/rules/approval/new")
@page
async def new_rule_submit(request: Request) -> Response:
    return await _save(request, None)


@router.get("/admin/rules/approval/{rule_id}")
@page
async def edit_rule_form(request: Request, rule_id: str) -> Response:
    principal = _editor(request)
    rule = await _db(request, lambda s: approval_rules.to_dict(approval_rules.get(s, rule_id)))
    return _form(request, principal, _values(rule), [], rule_id=rule_id)


@router.post("/admin/rules/approval/{rule_id}")
@page
async def edit_rule_submit(request: Request, rule_id: str) -> Response:
    return await _save(request, rule_id)


# ---- enable, disable, delete -----------------------------------------------------------------------

async def _set_enabled(request: Request, rule_id: str, enabled: bool) -> Response:
    principal, _ = await posted(request, "admin.config")
    patch, ip = RulePatch(enabled=enabled), client_ip(request)
    await _write(request, lambda s: approval_rules.patch(s, rule_id, patch, principal, ip).id)
    return _see_other("/admin/rules?" + urlencode({"done": "enabled" if enabled else "disabled"}))


@router.post("/admin/rules/approval/{rule_id}/enable")
@page
async def rule_enable(request: Request, rule_id: str) -> Response:
    return await _set_enabled(request, rule_id, True)


@router.post("/admin/rules/approval/{rule_id}/disable")
@page
async def rule_disable(request: Request, rule_id: str) -> Response:
    return await _set_enabled(request, rule_id, False)


@router.post("/admin/rules/approval/{rule_id}/delete")
@page
async def rule_delete(request: Request, rule_id: str) -> Response:
    principal, form = await posted(request, "admin.config")
    if form.get("confirm") != "yes":
        rule = await _db(request, lambda s: approval_rules.to_dict(approval_rules.get(s, rule_id)))
        return _form(request, principal, _values(rule), ["tick the box to confirm the deletion"], 422, rule_id)
    ip = client_ip(request)
    await _write(request, approval_rules.delete, rule_id, principal, ip)
    return _see_other("/admin/rules?" + urlencode({"done": "deleted"}))
