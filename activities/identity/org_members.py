"""Members of organizations (role member | admin) and of teams (role member | lead | admin).

Users are added by ``user_id`` or ``username`` and addressed in paths by id (or username). A team
member is always a member of the team's organization: adding one to a team adds them to the
organization too (role member) when needed, and removing someone from an organization removes
them from its teams. Every change is audited in the caller's transaction.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, field_validator, model_validator
from sqlmodel import Session, col, select

from activities.request_body import RequestBody
from activities.db.models import User
from activities.db.models_orgs import Organization, OrgMember, Quota, Team, TeamMember
from activities.errors import Conflict, NotFound
from activities.audit.trail import audit
from activities.identity.principals import Principal

ORG_ROLES = ("member", "admin")
TEAM_ROLES = ("member", "lead", "admin")


def _role(value: str, roles: tuple[str, ...]) -> str:
    if value not in roles:
        raise ValueError(f"unknown role {value!r}; one of {', '.join(roles)}")
    return value


class OrgMemberAdd(RequestBody):
    """Exactly one of ``user_id`` and ``username``."""
    model_config = ConfigDict(extra="forbid")
    user_id: str | None = Field(None, min_length=1, max_length=200)
    username: str | None = Field(None, min_length=1, max_length=200)
    role: str = "member"
    _role_check = field_validator("role")(lambda v: _role(v, ORG_ROLES))

    @model_validator(mode="after")
    def _one_user(self) -> "OrgMemberAdd":
        if (self.user_id is None) == (self.username is None):
            raise ValueError("give exactly one of user_id and username")
        return self


class OrgMemberPatch(RequestBody):
    model_config = ConfigDict(extra="forbid")
    role: str
    _role_check = field_validator("role")(lambda v: _role(v, ORG_ROLES))


class TeamMemberAdd(OrgMemberAdd):
    _role_check = field_validator("role")(lambda v: _role(v, TEAM_ROLES))


class TeamMemberPatch(OrgMemberPatch):
    _role_check = field_validator("role")(lambda v: _role(v, TEAM_ROLES))


def get_user(session: Session, ref: str) -> User:
    """A user by id, else by username; NotFound otherwise."""
    user = session.get(User, ref) or session.exec(select(User).where(User.username == ref)).first()
    if user is None:
        raise NotFound(f"user {ref!r} not found")
    return user


def _named_user(session: Session, body: OrgMemberAdd) -> User:
    if body.user_id is not None:
        user = session.get(User, body.user_id)
        if user is None:
            raise NotFound(f"user {body.user_id!r} not found")
        return user
    user = session.exec(select(User).where(User.username == body.username)).first()
    if user is None:
        raise NotFound(f"user {body.username!r} not found")
    return user


def member_dict(member: OrgMember | TeamMember, user: User) -> dict[str, Any]:
    return {"user_id": user.id, "username": user.username, "display_name": user.display_name,
            "email": user.email, "role": member.role, "created_at": member.created_at}


# ---- organization members --------------------------------------------------------------------

def list_org_members(session: Session, org: Organization) -> list[tuple[OrgMember, User]]:
    query = (select(OrgMember, User).join(User, User.id == OrgMember.user_id)
             .where(OrgMember.org_id == org.id).order_by(User.username))
    return [(m, u) for m, u in session.exec(query)]


def _org_member(session: Session, org: Organization, user_ref: str) -> tuple[OrgMember, User]:
    user = get_user(session, user_ref)
    member = session.get(OrgMember, (org.id, user.id))
    if member is None:
        raise NotFound(f"user {user.username!r} is not a member of organization {org.slug!r}")
    return member, user


def add_org_member(session: Session, org: Organization, body: OrgMemberAdd, actor: Principal,
                   ip: str | None) -> tuple[OrgMember, User]:
    user = _named_user(session, body)
    if session.get(OrgMember, (org.id, user.id)) is not None:
        raise Conflict(f"user {user.username!r} is already a member of organization {org.slug!r}")
    member = OrgMember(org_id=org.id, user_id=user.id, role=body.role)
    session.add(member)
    audit(session, actor.username, "org.member_added", "organization", org.id,
          {"org": org.slug, "user_id": user.id, "username": user.username, "role": body.role}, ip=ip)
    return member, user


def patch_org_member(session: Session, org: Organization, user_ref: str, body: OrgMemberPatch, actor: Principal,
                     ip: str | None) -> tuple[OrgMember, User]:
    member, user = _org_member(session, org, user_ref)
    before, member.role = member.role, body.role
    session.add(member)
    audit(session, actor.username, "org.member_updated", "organization", org.id,
          {"org": org.slug, "user_id": user.id, "username": user.username, "role": body.role, "was": before}, ip=ip)
    return member, user


def remove_org_member(session: Session, org: Organization, user_ref: str, actor: Principal, ip: str | None) -> None:
    """Remove the user from the organization and from each of its teams."""
    member, user = _org_member(session, org, user_ref)
    teams = list(session.exec(select(Team, TeamMember).join(TeamMember, TeamMember.team_id == Team.id)
                              .where(Team.org_id == org.id, TeamMember.user_id == user.id)))
    for _, team_member in teams:
        session.delete(team_member)
    session.delete(member)
    audit(session, actor.username, "org.member_removed", "organization", org.id,
          {"org": org.slug, "user_id": user.id, "username": user.username,
           "teams": sorted(team.slug for team, _ in teams)}, ip=ip)


# ---- team members ----------------------------------------------------------------------------

def list_team_members(session: Session, team: Team) -> list[tuple[TeamMember, User]]:
    query = (select(TeamMember, User).join(User, User.id == TeamMember.user_id)
             .where(TeamMember.team_id == team.id).order_by(User.username))
    return [(m, u) for m, u in session.exec(query)]


def _team_member(session: Session, team: Team, user_ref: str) -> tuple[TeamMember, User]:
    user = get_user(session, user_ref)
    member = session.get(TeamMember, (team.id, user.id))
    if member is None:
        raise NotFound(f"user {user.username!r} is not a member of team {team.slug!r}")
    return member, user


def add_team_member(session: Session, org: Organization, team: Team, body: TeamMemberAdd, actor: Principal,
                    ip: str | None) -> tuple[TeamMember, User]:
    user = _named_user(session, body)
    if session.get(TeamMember, (team.id, user.id)) is not None:
        raise Conflict(f"user {user.username!r} is already a member of team {team.slug!r}")
    joined_org = session.get(OrgMember, (org.id, user.id)) is None
    if joined_org:
        session.add(OrgMember(org_id=org.id, user_id=user.id, role="member"))
    member = TeamMember(team_id=team.id, user_id=user.id, role=body.role)
    session.add(member)
    audit(session, actor.username, "team.member_added", "team", team.id,
          {"org": org.slug, "team": team.slug, "user_id": user.id, "username": user.username, "role": body.role,
           "added_to_org": joined_org}, ip=ip)
    return member, user


def patch_team_member(session: Session, org: Organization, team: Team, user_ref: str, body: TeamMemberPatch,
                      actor: Principal, ip: str | None) -> tuple[TeamMember, User]:
    member, user = _team_member(session, team, user_ref)
    before, member.role = member.role, body.role
    session.add(member)
    audit(session, actor.username, "team.member_updated", "team", team.id,
          {"org": org.slug, "team": team.slug, "user_id": user.id, "username": user.username, "role": body.role,
           "was": before}, ip=ip)
    return member, user


def remove_team_member(session: Session, org: Organization, team: Team, user_ref: str, actor: Principal,
                       ip: str | None) -> None:
    """Remove the user from the team (they stay a member of the organization)."""
    member, user = _team_member(session, team, user_ref)
    session.delete(member)
    audit(session, actor.username, "team.member_removed", "team", team.id,
          {"org": org.slug, "team": team.slug, "user_id": user.id, "username": user.username}, ip=ip)


def forget_user(session: Session, user_id: str) -> None:
    """Drop a user's memberships and personal quotas; to be called before the user row is deleted
    (the membership tables reference ``user.id``)."""
    for model in (TeamMember, OrgMember):
        for row in session.exec(select(model).where(col(model.user_id) == user_id)):
            session.delete(row)
    for quota in session.exec(select(Quota).where(Quota.scope == "user", Quota.scope_id == user_id)):
        session.delete(quota)
    session.flush()
