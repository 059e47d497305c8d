"""Console pages for organizations, teams, their members and quotas.

``/admin/orgs`` lists the organizations the caller may see (``org.view``; every one with
``org.create``, else those they belong to, as ``GET /api/orgs``) and creates one (``org.create``);
``/admin/orgs/{org}`` shows an organization, its members and teams (``team.view``) and its quotas,
and creates teams (``team.create``); ``/admin/orgs/{org}/teams/{team}`` shows a team's members
(add, change role, remove: ``team.manage.members``) and its quotas. ``/admin/quotas`` lists every
quota (``admin.config``, as ``GET /api/quotas``), the quota types of ``GET /api/quotas/types``, the
queue's global concurrency limits (changed with ``queue.manage``, as ``POST /api/queue/concurrency``)
and sets user and level quotas. Setting, changing and deleting a quota needs ``admin.config``.

Every change goes through the domain function its REST route in ``api/routers/orgs.py`` /
``quotas.py`` calls, with the same permission and visibility checks and the same audit entries;
after a quota change the admission line passes at once, as after the REST route. Each limit is shown
with the current usage of its scope as admission and ``GET /api/quotas/me`` count it
(``quota_limits.current_usage``: jobs holding a slot, or charged today / this month).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError
from starlette.background import BackgroundTask

from activities.capacity import admission
from activities.capacity.admission_signals import pass_and_notify
from activities.db.models_orgs import Quota, Team
from activities.errors import DomainError, InvalidInput, NotFound
from activities.governance import quotas, usage
from activities.governance.quota_limits import EffectiveLimit, current_usage, number
from activities.identity import org_members, orgs, users
from activities.identity.org_members import TEAM_ROLES, TeamMemberAdd, TeamMemberPatch
from activities.identity.orgs import OrgCreate, TeamCreate
from activities.identity.permissions import LEVEL_PRIORITY
from activities.identity.principals import Principal
from api import queue_changes
from api.console import sections
from api.console.pages import _blank, _db, _int, _see_other, _write, page, posted, render, signed_in, validation_messages
from api.deps import client_ip, get_state

router = APIRouter(include_in_schema=False)
sections.section("/admin/orgs", "Organizations and teams",
                 "Organizations, their teams and members, and the quotas of each with their usage.", "org.view")
sections.section("/admin/quotas", "Quotas",
                 "Every quota with its current usage; user and level quotas, the queue's global limits.",
                 "admin.config")

QUOTA_ADMIN = "admin.config"
NOTICES = {"org": "Organization created.", "team": "Team created.", "member": "Member added.", "role": "Role changed.", "removed": "Member removed.",
           "quota": "Quota saved.", "quota-deleted": "Quota deleted.", "limits": "Queue limits saved."}
PICKER_MAX = 500  # usernames offered in the member picker (admin.users only)


# ---- helpers ---------------------------------------------------------------------------------------

def _viewer(request: Request, permission: str = "org.view") -> Principal:
    principal = signed_in(request)
    principal.require(permission)
    return principal


def _url(*parts: str) -> str:
    return "/admin/orgs" + "".join("/" + quote(p, safe="") for p in parts)


def _team_url(org_id: str, team_id: str) -> str:
    return _url(org_id, "teams", team_id)


def _done(url: str, what: str) -> str:
    return f"{url}?{urlencode({'done': what})}"


def _notice(done: str | None) -> str | None:
    return NOTICES.get(done or "")


def _errors(exc: Exception) -> tuple[list[str], int]:
    if isinstance(exc, ValidationError):
        return validation_messages(exc), 422
    assert isinstance(exc, DomainError)
    return [exc.detail], exc.status_code


def _without_csrf(form: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in form.items() if k != "csrf"}


def _admission_pass(request: Request) -> BackgroundTask:
    """A quota change can admit waiting jobs (a raised ``concurrent_jobs``): pass the line at once,
    as the REST routes do after answering."""
    state = get_state(request)
    return BackgroundTask(pass_and_notify, state.db.session, state.temporal)


def _redirect_passing(request: Request, url: str) -> Response:
    response = _see_other(url)
    response.background = _admission_pass(request)
    return response


def _usage(session, quota: Quota) -> float | int | None:
    """The current usage the quota's limit is checked against: of its organization, team or user;
    a level quota binds each user of the level on their own usage (no single figure)."""
    if quota.scope not in ("org", "team", "user"):
        return None
    limit = EffectiveLimit(quota.quota_type, number(quota.quota_type, quota.limit_value), quota.action,
                           f"{quota.scope} {quota.scope_id}", quota.scope, quota.scope_id, quota.id,
                           quota.scope, quota.scope_id)
    return current_usage(session, limit)


def _shown(value: float | int | None) -> str:
    if value is None:
        return ""
    return str(value) if isinstance(value, int) else f"{round(float(value), 4):,.4f}".rstrip("0").rstrip(".")


def _quota_rows(session, rows: list[Quota]) -> list[dict[str, Any]]:
    out = []
    for quota in rows:
        row = quotas.quota_dict(session, quota)
        used = _usage(session, quota)
        row.update(usage=used, usage_text=_shown(used), limit_text=_shown(row["limit"]),
                   unit=quotas.TYPE_INFO[quota.quota_type][1], whole=quota.quota_type in quotas.WHOLE_TYPES,
                   over=used is not None and used >= row["limit"], href=_scope_href(session, quota))
        out.append(row)
    return out


def _scope_href(session, quota: Quota) -> str | None:
    if quota.scope == "org":
        return _url(quota.scope_id)
    if quota.scope == "team":
        team = session.get(Team, quota.scope_id)
        return _team_url(team.org_id, team.id) if team else None
    return None


def _quota_context(principal: Principal) -> dict[str, Any]:
    """What every quota form needs."""
    return {"quota_types": quotas.quota_types()["types"], "actions": quotas.ACTIONS,
            "may_set_quotas": principal.has(QUOTA_ADMIN)}


def _limit(form: dict[str, str]) -> float:
    text = (form.get("limit") or "").strip()
    if not text:
        raise InvalidInput("limit: enter a number")
    try:
        return float(text)
    except ValueError:
        raise InvalidInput(f"limit: {text!r} is not a number") from None


def _quota_body(form: dict[str, str]) -> quotas.QuotaBody:
    return quotas.QuotaBody.model_validate({"quota_type": form.get("quota_type", ""), "limit": _limit(form),
                                            "action": form.get("action") or "block"})


def _owned_quota(session, quota_id: str, scope: str, scope_id: str) -> Quota:
    """A quota of this organization or team (another's is reported as missing)."""
    quota = quotas.get(session, quota_id)
    if quota.scope != scope or quota.scope_id != scope_id:
        raise NotFound(f"quota {quota_id!r} not found")
    return quota


# ---- organizations ---------------------------------------------------------------------------------

async def _orgs_page(request: Request, principal: Principal, status: int = 200, errors: list[str] | None = None,
                     values: dict[str, str] | None = None) -> Response:
    rows = await _db(request, lambda s: [orgs.org_dict(s, o) for o in orgs.list_orgs(s, principal)])
    return render(request, principal, "admin_orgs.html", status=status, orgs=rows, errors=errors or [],
                  values=values or {}, may_create=principal.has("org.create"), sees_all=orgs.sees_all(principal))


@router.get("/admin/orgs")
@page
async def orgs_list(request: Request) -> Response:
    return await _orgs_page(request, _viewer(request))


@router.post("/admin/orgs")
@page
async def org_create(request: Request) -> Response:
    principal, form = await posted(request, "org.create")
    try:
        body = OrgCreate.model_validate({"name": form.get("name", ""), "slug": form.get("slug", "").strip(),
                                         "description": _blank(form.get("description"))})
        org_id = await _write(request, lambda s: orgs.create_org(s, body, principal, client_ip(request)).id)
    except (ValidationError, DomainError) as exc:
        errors, status = _errors(exc)
        return await _orgs_page(request, principal, status, errors, _without_csrf(form))
    return _see_other(_done(_url(org_id), "org"))


async def _org_page(request: Request, principal: Principal, org_ref: str, status: int = 200,
                    errors: list[str] | None = None, values: dict[str, str] | None = None,
                    notice: str | None = None) -> Response:
    def load(session):
        org = orgs.visible_org(session, principal, org_ref)
        teams = ([orgs.team_dict(session, t, org) for t in orgs.list_teams(session, org)]
                 if principal.has("team.view") else None)
        members = [org_members.member_dict(m, u) for m, u in org_members.list_org_members(session, org)]
        return (orgs.org_dict(session, org), teams, members,
                _quota_rows(session, quotas.list_quotas(session, "org", org.id)))
    org, teams, members, quota_rows = await _db(request, load)
    return render(request, principal, "admin_orgs_org.html", status=status, org=org, teams=teams, members=members,
                  quotas=quota_rows, errors=errors or [], values=values or {}, notice=notice,
                  may_create_team=principal.has("team.create"), quota_action=_url(org["id"], "quotas"),
                  **_quota_context(principal))


@router.get("/admin/orgs/{org_id}")
@page
async def org_detail(request: Request, org_id: str, done: str | None = None) -> Response:
    return await _org_page(request, _viewer(request), org_id, notice=_notice(done))


@router.post("/admin/orgs/{org_id}/teams")
@page
async def team_create(request: Request, org_id: str) -> Response:
    principal, form = await posted(request, "team.create")

    def create(session) -> tuple[str, str]:
        org = orgs.visible_org(session, principal, org_id)
        body = TeamCreate.model_validate({"name": form.get("name", ""), "slug": form.get("slug", "").strip(),
                                          "description": _blank(form.get("description"))})
        return org.id, orgs.create_team(session, org, body, principal, client_ip(request)).id
    try:
        org_key, team_id = await _write(request, create)
    except (ValidationError, DomainError) as exc:  # an organization out of sight: the re-render is the 404 page
        errors, status = _errors(exc)
        return await _org_page(request, principal, org_id, status, errors, {"form": "team", **_without_csrf(form)})
    return _see_other(_done(_team_url(org_key, team_id), "team"))


@router.post("/admin/orgs/{org_id}/quotas")
@page
async def org_quota_set(request: Request, org_id: str) -> Response:
    """``POST /api/orgs/{org_id}/quotas``: create the organization's quota of a type, or replace it."""
    principal, form = await posted(request, QUOTA_ADMIN)

    def store(session) -> str:
        org = orgs.get_org(session, org_id)
        quotas.set_quota(session, "org", org.id, _quota_body(form), principal, client_ip(request))
        return org.id
    try:
        org_key = await _write(request, store)
    except (ValidationError, DomainError) as exc:
        errors, status = _errors(exc)
        return await _org_page(request, principal, org_id, status, errors, {"form": "quota", **_without_csrf(form)})
    return _redirect_passing(request, _done(_url(org_key), "quota"))


@router.post("/admin/orgs/{org_id}/quotas/{quota_id}/delete")
@page
async def org_quota_delete(request: Request, org_id: str, quota_id: str) -> Response:
    principal, _ = await posted(request, QUOTA_ADMIN)

    def delete(session) -> str:
        org = orgs.get_org(session, org_id)
        _owned_quota(session, quota_id, "org", org.id)
        quotas.delete_quota(session, quota_id, principal, client_ip(request))
        return org.id
    org_key = await _write(request, delete)
    return _redirect_passing(request, _done(_url(org_key), "quota-deleted"))


# ---- teams -----------------------------------------------------------------------------------------

async def _team_page(request: Request, principal: Principal, org_ref: str, team_ref: str, status: int = 200,
                     errors: list[str] | None = None, values: dict[str, str] | None = None,
                     notice: str | None = None) -> Response:
    def load(session):
        org = orgs.visible_org(session, principal, org_ref)
        team = orgs.get_team(session, org, team_ref)
        members = [org_members.member_dict(m, u) for m, u in org_members.list_team_members(session, team)]
        quota_rows = (_quota_rows(session, quotas.list_quotas(session, "team", team.id))
                      if principal.has("org.view") else None)
        ceilings = {q.quota_type: number(q.quota_type, q.limit_value) for q in quotas.list_quotas(session, "org", org.id)}
        picker = ([u.username for u in users.list_all(session)[:PICKER_MAX]]
                  if principal.has("admin.users") and principal.has("team.manage.members") else [])
        return orgs.org_dict(session, org), orgs.team_dict(session, team, org), members, quota_rows, ceilings, picker
    org, team, members, quota_rows, ceilings, picker = await _db(request, load)
    return render(request, principal, "admin_orgs_team.html", status=status, org=org, team=team, members=members,
                  quotas=quota_rows, ceilings=ceilings, picker=picker, roles=TEAM_ROLES, errors=errors or [],
                  values=values or {}, notice=notice, may_manage=principal.has("team.manage.members"),
                  team_url=_team_url(org["id"], team["id"]), quota_action=_team_url(org["id"], team["id"]) + "/quotas",
                  **_quota_context(principal))


@router.get("/admin/orgs/{org_id}/teams/{team_id}")
@page
async def team_detail(request: Request, org_id: str, team_id: str, done: str | None = None) -> Response:
    return await _team_page(request, _viewer(request, "team.view"), org_id, team_id, notice=_notice(done))


async def _team_change(request: Request, org_id: str, team_id: str, permission: str, change, done: str,
                       form_name: str, passing: bool = False) -> Response:
    """A form post on a team page: ``change(session, form, org, team)`` with the org as REST resolves
    it; refusals re-render the team page with the reason and the request's status."""
    principal, form = await posted(request, permission)

    def run(session) -> tuple[str, str]:
        org = (orgs.get_org(session, org_id) if permission == QUOTA_ADMIN  # as the REST quota route
               else orgs.visible_org(session, principal, org_id))
        team = orgs.get_team(session, org, team_id)
        change(session, principal, form, org, team)
        return org.id, team.id
    try:
        org_key, team_key = await _write(request, run)
    except (ValidationError, DomainError) as exc:  # a team out of sight: the re-render is the 404 page
        errors, status = _errors(exc)
        return await _team_page(request, principal, org_id, team_id, status, errors,
                                {"form": form_name, **_without_csrf(form)})
    url = _done(_team_url(org_key, team_key), done)
    return _redirect_passing(request, url) if passing else _see_other(url)


@router.post("/admin/orgs/{org_id}/teams/{team_id}/members")
@page
async def member_add(request: Request, org_id: str, team_id: str) -> Response:
    """``POST /api/orgs/{org_id}/teams/{team_id}/members``, by username (typed or picked)."""
    def change(session, principal, form, org, team):
        body = TeamMemberAdd.model_validate({"username": (form.get("username") or "").strip() or None,
                                             "role": form.get("role") or "member"})
        org_members.add_team_member(session, org, team, body, principal, client_ip(request))
    return await _team_change(request, org_id, team_id, "team.manage.members", change, "member", "member")


@router.post("/admin/orgs/{org_id}/teams/{team_id}/members/{user_id}/role")
@page
async def member_role(request: Request, org_id: str, team_id: str, user_id: str) -> Response:
    """``PATCH /api/orgs/{org_id}/teams/{team_id}/members/{user_id}``."""
    def change(session, principal, form, org, team):
        body = TeamMemberPatch.model_validate({"role": form.get("role", "")})
        org_members.patch_team_member(session, org, team, user_id, body, principal, client_ip(request))
    return await _team_change(request, org_id, team_id, "team.manage.members", change, "role", "member-role")


@router.post("/admin/orgs/{org_id}/teams/{team_id}/members/{user_id}/remove")
@page
async def member_remove(request: Request, org_id: str, team_id: str, user_id: str) -> Response:
    """``DELETE /api/orgs/{org_id}/teams/{team_id}/members/{user_id}``."""
    def change(session, principal, form, org, team):
        org_members.remove_team_member(session, org, team, user_id, principal, client_ip(request))
    return await _team_change(request, org_id, team_id, "team.manage.members", change, "removed", "member-remove")


@router.post("/admin/orgs/{org_id}/teams/{team_id}/quotas")
@page
async def team_quota_set(request: Request, org_id: str, team_id: str) -> Response:
    """``POST /api/orgs/{org_id}/teams/{team_id}/quotas`` (at most the organization's ceiling: 400)."""
    def change(session, principal, form, org, team):
        quotas.set_quota(session, "team", team.id, _quota_body(form), principal, client_ip(request))
    return await _team_change(request, org_id, team_id, QUOTA_ADMIN, change, "quota", "quota", passing=True)


@router.post("/admin/orgs/{org_id}/teams/{team_id}/quotas/{quota_id}/delete")
@page
async def team_quota_delete(request: Request, org_id: str, team_id: str, quota_id: str) -> Response:
    def change(session, principal, form, org, team):
        _owned_quota(session, quota_id, "team", team.id)
        quotas.delete_quota(session, quota_id, principal, client_ip(request))
    return await _team_change(request, org_id, team_id, QUOTA_ADMIN, change, "quota-deleted", "quota-delete",
                              passing=True)


# ---- every quota -----------------------------------------------------------------------------------

async def _quotas_page(request: Request, principal: Principal, status: int = 200, errors: list[str] | None = None,
                       values: dict[str, str] | None = None, notice: str | None = None) -> Response:
    def load(session):
        queue = admission.settings(session)
        limits = {"max_concurrent": queue.max_concurrent, "user_max_concurrent": queue.user_max_concurrent,
                  "in_use": usage.concurrent_jobs(session, "global", ""), "updated_by": queue.updated_by,
                  "updated_at": queue.updated_at}
        picker = [u.username for u in users.list_all(session)[:PICKER_MAX]] if principal.has("admin.users") else []
        return _quota_rows(session, quotas.list_quotas(session)), limits, picker
    rows, limits, picker = await _db(request, load)
    return render(request, principal, "admin_quotas.html", status=status, quotas=rows, limits=limits, picker=picker,
                  types=quotas.quota_types(), levels=list(LEVEL_PRIORITY), errors=errors or [], values=values or {},
                  notice=notice, may_manage_queue=principal.has("queue.manage"), **_quota_context(principal))


@router.get("/admin/quotas")
@page
async def quotas_overview(request: Request, done: str | None = None) -> Response:
    return await _quotas_page(request, _viewer(request, QUOTA_ADMIN), notice=_notice(done))


@router.post("/admin/quotas")
@page
async def scoped_quota_set(request: Request) -> Response:
    """``POST /api/quotas``: a user quota (by username) or a level quota."""
    principal, form = await posted(request, QUOTA_ADMIN)
    try:
        scope = form.get("scope", "")
        data: dict[str, Any] = {"scope": scope, "quota_type": form.get("quota_type", ""), "limit": _limit(form),
                                "action": form.get("action") or "block"}
        if scope == "user":
            data["username"] = (form.get("username") or "").strip() or None
        else:
            data["level"] = form.get("level") or None
        body = quotas.ScopedQuotaBody.model_validate(data)
        await _write(request, quotas.set_scoped_quota, body, principal, client_ip(request))
    except (ValidationError, DomainError) as exc:
        errors, status = _errors(exc)
        return await _quotas_page(request, principal, status, errors, {"form": "scoped", **_without_csrf(form)})
    return _redirect_passing(request, _done("/admin/quotas", "quota"))


@router.post("/admin/quotas/global")
@page
async def global_limits_set(request: Request) -> Response:
    """``POST /api/queue/concurrency`` (``queue.manage``): the queue's limits on jobs at once, in all
    and per user (blank: unlimited)."""
    principal, form = await posted(request, "queue.manage")
    try:
        body = queue_changes.ConcurrencyBody(
            max_concurrent=_int(form.get("max_concurrent"), None, 1, 100_000, "Jobs at once"),
            user_max_concurrent=_int(form.get("user_max_concurrent"), None, 1, 100_000, "Jobs at once per user"))
        await queue_changes.set_concurrency(get_state(request), principal, body, client_ip(request))
    except (ValidationError, DomainError) as exc:
        errors, status = _errors(exc)
        principal.require(QUOTA_ADMIN)  # the page itself needs it
        return await _quotas_page(request, principal, status, errors, {"form": "global", **_without_csrf(form)})
    return _see_other(_done("/admin/quotas", "limits"))


@router.post("/admin/quotas/{quota_id}")
@page
async def quota_edit(request: Request, quota_id: str) -> Response:
    """A new limit or action for an existing quota: the REST set route of its scope (same scope and
    type, so it replaces it)."""
    principal, form = await posted(request, QUOTA_ADMIN)

    def store(session) -> None:
        quota = quotas.get(session, quota_id)
        body = _quota_body({**form, "quota_type": quota.quota_type})
        quotas.set_quota(session, quota.scope, quota.scope_id, body, principal, client_ip(request))
    try:
        await _write(request, store)
    except (ValidationError, DomainError) as exc:
        errors, status = _errors(exc)
        return await _quotas_page(request, principal, status, errors, {"form": f"edit-{quota_id}", **_without_csrf(form)})
    return _redirect_passing(request, _done("/admin/quotas", "quota"))


@router.post("/admin/quotas/{quota_id}/delete")
@page
async def quota_delete(request: Request, quota_id: str) -> Response:
    """``DELETE /api/quotas/{quota_id}``."""
    principal, _ = await posted(request, QUOTA_ADMIN)
    await _write(request, quotas.delete_quota, quota_id, principal, client_ip(request))
    return _redirect_passing(request, _done("/admin/quotas", "quota-deleted"))
