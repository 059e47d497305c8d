"""Organizations, teams and their members under /api/orgs.

Reads need ``org.view`` / ``team.view``, and callers without ``org.create`` see only organizations
they belong to (any other is 404). Creating, changing and deleting organizations needs
``org.create``, teams ``team.create``; team members ``team.manage.members``, organization members
``org.create``. Organizations and teams may be addressed by id or slug, members by user id.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from activities.identity import org_members

from activities.identity import orgs
from activities.identity.org_members import OrgMemberAdd, OrgMemberPatch, TeamMemberAdd, TeamMemberPatch
from activities.identity.orgs import OrgCreate, OrgPatch, TeamCreate, TeamPatch
from activities.identity.principals import Principal
from api.deps import SessionDep, client_ip, require
from api.schemas.base import Deleted
from api.schemas.orgs import (Member, MemberList, Org, OrgList, OrgMemberRemoved, Team, TeamList,
                              TeamMemberRemoved)

router = APIRouter(prefix="/api/orgs", tags=["organizations"])

OrgViewDep = Annotated[Principal, Depends(require("org.view"))]
TeamViewDep = Annotated[Principal, Depends(require("team.view"))]
OrgAdminDep = Annotated[Principal, Depends(require("org.create"))]
TeamAdminDep = Annotated[Principal, Depends(require("team.create"))]
MembersDep = Annotated[Principal, Depends(require("team.manage.members"))]


def _members(rows) -> dict:
    return {"members": [org_members.member_dict(m, u) for m, u in rows]}


# ---- organizations ---------------------------------------------------------------------------

@router.get("", response_model=OrgList)
def list_orgs(session: SessionDep, principal: OrgViewDep) -> dict:
    return {"orgs": [orgs.org_dict(session, o) for o in orgs.list_orgs(session, principal)]}


@router.post("", status_code=201, response_model=Org)
def create_org(body: OrgCreate, session: SessionDep, principal: OrgAdminDep, request: Request) -> dict:
    org = orgs.create_org(session, body, principal, client_ip(request))
    session.commit()
    return orgs.org_dict(session, org)


@router.get("/{org_id}", response_model=Org)
def get_org(org_id: str, session: SessionDep, principal: OrgViewDep) -> dict:
    return orgs.org_dict(session, orgs.visible_org(session, principal, org_id))


@router.patch("/{org_id}", response_model=Org)
def patch_org(org_id: str, body: OrgPatch, session: SessionDep, principal: OrgAdminDep, request: Request) -> dict:
    org = orgs.patch_org(session, org_id, body, principal, client_ip(request))
    session.commit()
    return orgs.org_dict(session, org)


@router.delete("/{org_id}", response_model=Deleted)
def delete_org(org_id: str, session: SessionDep, principal: OrgAdminDep, request: Request) -> dict:
    org = orgs.get_org(session, org_id)
    orgs.delete_org(session, org.id, principal, client_ip(request))
    session.commit()
    return {"deleted": org.id}


# ---- organization members --------------------------------------------------------------------

@router.get("/{org_id}/members", response_model=MemberList)
def list_org_members(org_id: str, session: SessionDep, principal: OrgViewDep) -> dict:
    return _members(org_members.list_org_members(session, orgs.visible_org(session, principal, org_id)))


@router.post("/{org_id}/members", status_code=201, response_model=Member)
def add_org_member(org_id: str, body: OrgMemberAdd, session: SessionDep, principal: OrgAdminDep,
                   request: Request) -> dict:
    org = orgs.get_org(session, org_id)
    member, user = org_members.add_org_member(session, org, body, principal, client_ip(request))
    session.commit()
    return org_members.member_dict(member, user)


@router.patch("/{org_id}/members/{user_id}", response_model=Member)
def patch_org_member(org_id: str, user_id: str, body: OrgMemberPatch, session: SessionDep, principal: OrgAdminDep,
                     request: Request) -> dict:
    org = orgs.get_org(session, org_id)
    member, user = org_members.patch_org_member(session, org, user_id, body, principal, client_ip(request))
    session.commit()
    return org_members.member_dict(member, user)


@router.delete("/{org_id}/members/{user_id}", response_model=OrgMemberRemoved)
def remove_org_member(org_id: str, user_id: str, session: SessionDep, principal: OrgAdminDep,
                      request: Request) -> dict:
    org = orgs.get_org(session, org_id)
    org_members.remove_org_member(session, org, user_id, principal, client_ip(request))
    session.commit()
    return {"removed": user_id, "org_id": org.id}


# ---- teams -----------------------------------------------------------------------------------

@router.get("/{org_id}/teams", response_model=TeamList)
def list_teams(org_id: str, session: SessionDep, principal: TeamViewDep) -> dict:
    org = orgs.visible_org(session, principal, org_id)
    return {"teams": [orgs.team_dict(session, t, org) for t in orgs.list_teams(session, org)]}


@router.post("/{org_id}/teams", status_code=201, response_model=Team)
def create_team(org_id: str, body: TeamCreate, session: SessionDep, principal: TeamAdminDep,
                request: Request) -> dict:
    org = orgs.visible_org(session, principal, org_id)
    team = orgs.create_team(session, org, body, principal, client_ip(request))
    session.commit()
    return orgs.team_dict(session, team, org)


@router.get("/{org_id}/teams/{team_id}", response_model=Team)
def get_team(org_id: str, team_id: str, session: SessionDep, principal: TeamViewDep) -> dict:
    org = orgs.visible_org(session, principal, org_id)
    return orgs.team_dict(session, orgs.get_team(session, org, team_id), org)


@router.patch("/{org_id}/teams/{team_id}", response_model=Team)
def patch_team(org_id: str, team_id: str, body: TeamPatch, session: SessionDep, principal: TeamAdminDep,
               request: Request) -> dict:
    org = orgs.visible_org(session, principal, org_id)
    team = orgs.patch_team(session, org, team_id, body, principal, client_ip(request))
    session.commit()
    return orgs.team_dict(session, team, org)


@router.delete("/{org_id}/teams/{team_id}", response_model=Deleted)
def delete_team(org_id: str, team_id: str, session: SessionDep, principal: TeamAdminDep, request: Request) -> dict:
    org = orgs.visible_org(session, principal, org_id)
    team = orgs.get_team(session, org, team_id)
    orgs.delete_team(session, org, team.id, principal, client_ip(request))
    session.commit()
    return {"deleted": team.id}


# ---- team members ----------------------------------------------------------------------------

@router.get("/{org_id}/teams/{team_id}/members", response_model=MemberList)
def list_team_members(org_id: str, team_id: str, session: SessionDep, principal: TeamViewDep) -> dict:
    org = orgs.visible_org(session, principal, org_id)
    return _members(org_members.list_team_members(session, orgs.get_team(session, org, team_id)))


@router.post("/{org_id}/teams/{team_id}/members", status_code=201, response_model=Member)
def add_team_member(org_id: str, team_id: str, body: TeamMemberAdd, session: SessionDep, principal: MembersDep,
                    request: Request) -> dict:
    org = orgs.visible_org(session, principal, org_id)
    team = orgs.get_team(session, org, team_id)
    member, user = org_members.add_team_member(session, org, team, body, principal, client_ip(request))
    session.commit()
    return org_members.member_dict(member, user)


@router.patch("/{org_id}/teams/{team_id}/members/{user_id}", response_model=Member)
def patch_team_member(org_id: str, team_id: str, user_id: str, body: TeamMemberPatch, session: SessionDep,
                      principal: MembersDep, request: Request) -> dict:
    org = orgs.visible_org(session, principal, org_id)
    team = orgs.get_team(session, org, team_id)
    member, user = org_members.patch_team_member(session, org, team, user_id, body, principal, client_ip(request))
    session.commit()
    return org_members.member_dict(member, user)


@router.delete("/{org_id}/teams/{team_id}/members/{user_id}", response_model=TeamMemberRemoved)
def remove_team_member(org_id: str, team_id: str, user_id: str, session: SessionDep, principal: MembersDep,
                       request: Request) -> dict:
    org = orgs.visible_org(session, principal, org_id)
    team = orgs.get_team(session, org, team_id)
    org_members.remove_team_member(session, org, team, user_id, principal, client_ip(request))
    session.commit()
    return {"removed": user_id, "team_id": team.id}
