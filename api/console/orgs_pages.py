"""Console pages for organizations, teams and their members.

``/admin/orgs`` lists the organizations the caller may see (``org.view``; every one with
``org.create``, else those they belong to, as ``GET /api/orgs``) and creates one (``org.create``);
``/admin/orgs/{org}`` shows an organization, its members and teams (``team.view``) and its quotas
with their usage, and creates teams (``team.create``); ``/admin/orgs/{org}/teams/{team}`` shows a
team's members (add, change role, remove: ``team.manage.members``) and its quotas. Setting, changing
and deleting a quota needs ``admin.config``.

Every change goes through the domain function its REST route in ``api/routers/orgs.py`` /
``quotas.py`` calls, with the same permission and visibility checks and the same audit entries.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from activities.errors import DomainError
from activities.governance import quotas
from activities.governance.quota_limits import number
from activities.identity import org_members, orgs, users
from activities.identity.org_members import TEAM_ROLES, TeamMemberAdd, TeamMemberPatch
from activities.identity.orgs import OrgCreate, TeamCreate
from activities.identity.principals import Principal
from api.console import sections
from api.console.org_views import (_viewer, _url, _team_url, _done, _notice, _errors, _without_csrf,
                                   _redirect_passing, _quota_rows, _quota_context, _quota_body, _owned_quota,
                                   QUOTA_ADMIN, PICKER_MAX)
from api.console.pages import _blank, _db, _see_other, _write, page, posted, render
from api.deps import client_ip

router = APIRouter(include_in_schema=False)
sections.section("/admin/orgs", "Organizations and teams",
                 "Organizations, their teams and members, and the quotas of each with their usage.", "org.view")


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
