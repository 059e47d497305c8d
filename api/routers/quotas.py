"""Quotas: per organization and team under /api/orgs, per user and level under /api/quotas, and
/api/quotas/me (any signed-in user: their effective limits, sources and usage).

Setting or deleting a quota needs ``admin.config``; reading an organization's or team's quotas needs
``org.view`` and sight of the organization; listing every quota needs ``admin.config``. A POST
creates the quota (201) or replaces the one of the same scope and type (200).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, Request, Response

from activities.identity import orgs

from activities.governance import quotas
from activities.db.models import User
from activities.errors import Forbidden, NotFound
from activities.identity.principals import Principal, levels_of
from activities.governance.quotas import QuotaBody, ScopedQuotaBody
from activities.capacity.admission_signals import pass_and_notify
from api.deps import PrincipalDep, SessionDep, StateDep, client_ip, require
from api.schemas.base import Deleted
from api.schemas.quotas import Quota, QuotaList, QuotaTypes, UserQuotas
from api.state import AppState

router = APIRouter(tags=["quotas"])
REPLACED = {200: {"model": Quota, "description": "Replaced the quota of the same scope and type"}}

OrgViewDep = Annotated[Principal, Depends(require("org.view"))]
ConfigAdminDep = Annotated[Principal, Depends(require("admin.config"))]


def _answer(session, quota, created: bool, response: Response, state: AppState, background: BackgroundTasks) -> dict:
    session.commit()
    result = quotas.quota_dict(session, quota)
    session.close()  # end the transaction now: the admission pass below needs the database's write lock
    background.add_task(pass_and_notify, state.db.session, state.temporal)  # a raised concurrent_jobs quota admits waiting jobs at once
    response.status_code = 201 if created else 200
    return result


def _listing(session, rows) -> dict:
    return {"quotas": [quotas.quota_dict(session, q) for q in rows]}


@router.get("/api/orgs/{org_id}/quotas", response_model=QuotaList)
def list_org_quotas(org_id: str, session: SessionDep, principal: OrgViewDep) -> dict:
    org = orgs.visible_org(session, principal, org_id)
    return _listing(session, quotas.list_quotas(session, "org", org.id))


@router.post("/api/orgs/{org_id}/quotas", status_code=201, response_model=Quota, responses=REPLACED)
def set_org_quota(org_id: str, body: QuotaBody, session: SessionDep, principal: ConfigAdminDep, request: Request,
                  response: Response, state: StateDep, background: BackgroundTasks) -> dict:
    org = orgs.get_org(session, org_id)
    quota, created = quotas.set_quota(session, "org", org.id, body, principal, client_ip(request))
    return _answer(session, quota, created, response, state, background)


@router.get("/api/orgs/{org_id}/teams/{team_id}/quotas", response_model=QuotaList)
def list_team_quotas(org_id: str, team_id: str, session: SessionDep, principal: OrgViewDep) -> dict:
    team = orgs.get_team(session, orgs.visible_org(session, principal, org_id), team_id)
    return _listing(session, quotas.list_quotas(session, "team", team.id))


@router.post("/api/orgs/{org_id}/teams/{team_id}/quotas", status_code=201, response_model=Quota,
              responses=REPLACED)
def set_team_quota(org_id: str, team_id: str, body: QuotaBody, session: SessionDep, principal: ConfigAdminDep,
                   request: Request, response: Response, state: StateDep, background: BackgroundTasks) -> dict:
    team = orgs.get_team(session, orgs.get_org(session, org_id), team_id)
    quota, created = quotas.set_quota(session, "team", team.id, body, principal, client_ip(request))
    return _answer(session, quota, created, response, state, background)


@router.get("/api/quotas", response_model=QuotaList)
def list_quotas(session: SessionDep, _: ConfigAdminDep,
                scope: Literal["org", "team", "user", "level"] | None = None) -> dict:
    return _listing(session, quotas.list_quotas(session, scope))


@router.post("/api/quotas", status_code=201, response_model=Quota, responses=REPLACED)
def set_scoped_quota(body: ScopedQuotaBody, session: SessionDep, principal: ConfigAdminDep, request: Request,
                     response: Response, state: StateDep, background: BackgroundTasks) -> dict:
    quota, created = quotas.set_scoped_quota(session, body, principal, client_ip(request))
    return _answer(session, quota, created, response, state, background)


@router.get("/api/quotas/me", response_model=UserQuotas)
def my_quotas(session: SessionDep, principal: PrincipalDep) -> dict:
    return quotas.my_quotas(session, principal)


@router.get("/api/quotas/types", response_model=QuotaTypes)
def quota_types(_: PrincipalDep) -> dict:
    return quotas.quota_types()


@router.get("/api/quotas/user/{user_id}", response_model=UserQuotas)
def user_quotas(user_id: str, session: SessionDep, principal: PrincipalDep) -> dict:
    """Another user's effective limits and usage: for themselves, and for ``admin.users`` or
    ``admin.config`` holders (403 for anyone else, as for the account itself)."""
    if user_id != principal.user_id and not (principal.has("admin.users") or principal.has("admin.config")):
        raise Forbidden("only the user themselves or an administrator may see another user's quotas")
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id!r} not found")
    return quotas.user_quotas(session, user.id, user.username, levels_of(session, user.id))


@router.delete("/api/quotas/{quota_id}", response_model=Deleted)
def delete_quota(quota_id: str, session: SessionDep, principal: ConfigAdminDep, request: Request, state: StateDep,
                 background: BackgroundTasks) -> dict:
    quotas.delete_quota(session, quota_id, principal, client_ip(request))
    session.commit()
    session.close()  # end the transaction now: the admission pass below needs the database's write lock
    background.add_task(pass_and_notify, state.db.session, state.temporal)
    return {"deleted": quota_id}
