"""Organizations and their teams: CRUD (each change audited), who may see them, and ``job_scope``,
the team and organization a job is charged to.

Organizations and teams are addressed by id or by slug (ids carry an ``org_`` / ``team_`` prefix,
which no slug can contain, so the two never collide). A team's slug is unique within its
organization; a team addressed under another organization does not exist there (404). Members
live in ``org_members``. Deleting an organization or a team removes everything under it (teams,
memberships, quotas) in the caller's transaction.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ConfigDict, Field, field_validator
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from activities.request_body import RequestBody
from activities.db.models import utcnow
from activities.db.models_orgs import Organization, OrgMember, Quota, Team, TeamMember
from activities.errors import Conflict, Forbidden, InvalidInput, NotFound
from activities.audit.trail import audit
from activities.identity.principals import Principal
from activities.secrets.tokens import new_id

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
SEE_ALL = "org.create"  # whoever may create organizations sees every one; others only their own


def _slug(value: str | None) -> str | None:
    if value is not None and not SLUG_RE.match(value):
        raise ValueError(f"invalid slug {value!r}: use 1-63 lowercase letters, digits or '-', "
                         "starting with a letter or digit")
    return value


def _name(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise ValueError("name must not be blank")
    return value.strip() if value is not None else value


class _Fields(RequestBody):
    model_config = ConfigDict(extra="forbid")
    _slug_check = field_validator("slug", check_fields=False)(_slug)
    _name_check = field_validator("name", check_fields=False)(_name)


class OrgCreate(_Fields):
    name: str = Field(min_length=1, max_length=200)
    slug: str
    description: str | None = Field(None, max_length=2000)


class OrgPatch(_Fields):
    """Only the fields sent change."""
    name: str | None = Field(None, min_length=1, max_length=200)
    slug: str | None = None
    description: str | None = Field(None, max_length=2000)


class TeamCreate(OrgCreate):
    pass


class TeamPatch(OrgPatch):
    pass


# ---- lookups and visibility ------------------------------------------------------------------

def sees_all(principal: Principal) -> bool:
    return principal.has(SEE_ALL)


def is_org_member(session: Session, org_id: str, user_id: str) -> bool:
    return session.get(OrgMember, (org_id, user_id)) is not None


def get_org(session: Session, ref: str) -> Organization:
    """An organization by id or slug; NotFound otherwise."""
    org = session.get(Organization, ref) or session.exec(select(Organization).where(Organization.slug == ref)).first()
    if org is None:
        raise NotFound(f"organization {ref!r} not found")
    return org


def visible_org(session: Session, principal: Principal, ref: str) -> Organization:
    """The organization if the caller may see it: every one for org admins (``org.create``), else only
    those they belong to; an invisible organization is reported exactly like a missing one."""
    org = get_org(session, ref)
    if not sees_all(principal) and not is_org_member(session, org.id, principal.user_id):
        raise NotFound(f"organization {ref!r} not found")
    return org


def get_team(session: Session, org: Organization, ref: str) -> Team:
    """A team of ``org`` by id or slug; a team of another organization is NotFound."""
    team = session.get(Team, ref)
    if team is None:
        team = session.exec(select(Team).where(Team.org_id == org.id, Team.slug == ref)).first()
    if team is None or team.org_id != org.id:
        raise NotFound(f"team {ref!r} not found in organization {org.slug!r}")
    return team


def _count(session: Session, model: Any, column: Any, value: str) -> int:
    return int(session.exec(select(func.count()).select_from(model).where(column == value)).one())


def org_dict(session: Session, org: Organization) -> dict[str, Any]:
    return {"id": org.id, "slug": org.slug, "name": org.name, "description": org.description,
            "member_count": _count(session, OrgMember, OrgMember.org_id, org.id),
            "team_count": _count(session, Team, Team.org_id, org.id),
            "created_at": org.created_at, "updated_at": org.updated_at}


def team_dict(session: Session, team: Team, org: Organization | None = None) -> dict[str, Any]:
    org = org or session.get(Organization, team.org_id)
    return {"id": team.id, "org_id": team.org_id, "org_slug": org.slug if org else None, "slug": team.slug,
            "name": team.name, "description": team.description,
            "member_count": _count(session, TeamMember, TeamMember.team_id, team.id),
            "created_at": team.created_at, "updated_at": team.updated_at}


# ---- organizations ---------------------------------------------------------------------------

def list_orgs(session: Session, principal: Principal) -> list[Organization]:
    query = select(Organization).order_by(Organization.slug)
    if not sees_all(principal):
        query = query.join(OrgMember, OrgMember.org_id == Organization.id).where(
            OrgMember.user_id == principal.user_id)
    return list(session.exec(query))


def _check_org_slug(session: Session, slug: str, except_id: str | None = None) -> None:
    taken = session.exec(select(Organization.id).where(Organization.slug == slug)).first()
    if taken is not None and taken != except_id:
        raise Conflict(f"an organization with slug {slug!r} already exists")


def _check_team_slug(session: Session, org: Organization, slug: str, except_id: str | None = None) -> None:
    taken = session.exec(select(Team.id).where(Team.org_id == org.id, Team.slug == slug)).first()
    if taken is not None and taken != except_id:
        raise Conflict(f"organization {org.slug!r} already has a team with slug {slug!r}")


def _flush(session: Session, what: str) -> None:
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"{what} already exists") from None


def create_org(session: Session, body: OrgCreate, actor: Principal, ip: str | None) -> Organization:
    _check_org_slug(session, body.slug)
    org = Organization(id=new_id("org"), **body.model_dump())
    session.add(org)
    _flush(session, f"an organization with slug {body.slug!r}")
    audit(session, actor.username, "org.created", "organization", org.id, body.model_dump(), ip=ip)
    return org


def _apply(row: Organization | Team, changes: dict[str, Any]) -> dict[str, Any]:
    for key in ("name", "slug"):
        if key in changes and changes[key] is None:
            raise InvalidInput(f"{key} must not be null")
    changed = {k: v for k, v in changes.items() if v != getattr(row, k)}
    for key, value in changed.items():
        setattr(row, key, value)
    row.updated_at = utcnow()
    return changed


def patch_org(session: Session, ref: str, body: OrgPatch, actor: Principal, ip: str | None) -> Organization:
    org = get_org(session, ref)
    changes = body.model_dump(exclude_unset=True)
    if changes.get("slug"):
        _check_org_slug(session, changes["slug"], except_id=org.id)
    changed = _apply(org, changes)
    session.add(org)
    _flush(session, f"an organization with slug {org.slug!r}")
    audit(session, actor.username, "org.updated", "organization", org.id, {"slug": org.slug, "changes": changed}, ip=ip)
    return org


def _delete_quotas(session: Session, scope: str, scope_id: str) -> int:
    rows = list(session.exec(select(Quota).where(Quota.scope == scope, Quota.scope_id == scope_id)))
    for row in rows:
        session.delete(row)
    return len(rows)


def purge_team(session: Session, team: Team) -> dict[str, int]:
    """Delete a team with its memberships and quotas (no audit: the caller audits)."""
    members = list(session.exec(select(TeamMember).where(TeamMember.team_id == team.id)))
    for member in members:
        session.delete(member)
    quotas = _delete_quotas(session, "team", team.id)
    session.flush()  # children first: the database enforces the foreign keys
    session.delete(team)
    return {"members": len(members), "quotas": quotas}


def delete_org(session: Session, ref: str, actor: Principal, ip: str | None) -> None:
    org = get_org(session, ref)
    teams = list(session.exec(select(Team).where(Team.org_id == org.id)))
    for team in teams:
        purge_team(session, team)
    members = list(session.exec(select(OrgMember).where(OrgMember.org_id == org.id)))
    for member in members:
        session.delete(member)
    quotas = _delete_quotas(session, "org", org.id)
    session.flush()
    session.delete(org)
    audit(session, actor.username, "org.deleted", "organization", org.id,
          {"slug": org.slug, "teams": [t.slug for t in teams], "members": len(members), "quotas": quotas}, ip=ip)


# ---- teams -----------------------------------------------------------------------------------

def list_teams(session: Session, org: Organization) -> list[Team]:
    return list(session.exec(select(Team).where(Team.org_id == org.id).order_by(Team.slug)))


def create_team(session: Session, org: Organization, body: TeamCreate, actor: Principal, ip: str | None) -> Team:
    _check_team_slug(session, org, body.slug)
    team = Team(id=new_id("team"), org_id=org.id, **body.model_dump())
    session.add(team)
    _flush(session, f"a team with slug {body.slug!r} in organization {org.slug!r}")
    audit(session, actor.username, "team.created", "team", team.id, {"org": org.slug, **body.model_dump()}, ip=ip)
    return team


def patch_team(session: Session, org: Organization, ref: str, body: TeamPatch, actor: Principal,
               ip: str | None) -> Team:
    team = get_team(session, org, ref)
    changes = body.model_dump(exclude_unset=True)
    if changes.get("slug"):
        _check_team_slug(session, org, changes["slug"], except_id=team.id)
    changed = _apply(team, changes)
    session.add(team)
    _flush(session, f"a team with slug {team.slug!r} in organization {org.slug!r}")
    audit(session, actor.username, "team.updated", "team", team.id,
          {"org": org.slug, "slug": team.slug, "changes": changed}, ip=ip)
    return team


def delete_team(session: Session, org: Organization, ref: str, actor: Principal, ip: str | None) -> None:
    team = get_team(session, org, ref)
    removed = purge_team(session, team)
    audit(session, actor.username, "team.deleted", "team", team.id, {"org": org.slug, "slug": team.slug, **removed},
          ip=ip)


# ---- the scope a job is charged to -----------------------------------------------------------

def _named_teams(session: Session, ref: str) -> list[Team]:
    org_slug, sep, team_slug = ref.rpartition("/")
    if sep:
        query = select(Team).join(Organization, Organization.id == Team.org_id).where(
            Organization.slug == org_slug, Team.slug == team_slug)
        return list(session.exec(query))
    by_id = session.get(Team, ref)
    return [by_id] if by_id else list(session.exec(select(Team).where(Team.slug == ref)))


def job_scope(session: Session, user_id: str, team_slug: str | None) -> tuple[Team | None, Organization | None]:
    """The team and organization a job of ``user_id`` is charged to.

    With ``team_slug`` (a slug, ``<org slug>/<team slug>`` or a team id): that team, which the user
    must belong to (``Forbidden`` otherwise; an unknown team is ``InvalidInput``, and so is a slug
    naming teams of several organizations the user belongs to). Without: the user's oldest team
    membership. The organization is the team's, else the user's oldest organization membership;
    ``(None, None)`` when the user belongs to nothing.
    """
    if team_slug:
        teams = _named_teams(session, team_slug)
        if not teams:
            raise InvalidInput(f"unknown team {team_slug!r}")
        mine = [t for t in teams if session.get(TeamMember, (t.id, user_id)) is not None]
        if not mine:
            raise Forbidden(f"you are not a member of team {team_slug!r}")
        if len(mine) > 1:
            raise InvalidInput(f"team {team_slug!r} exists in several of your organizations; "
                               "name it as '<org slug>/<team slug>'")
        return mine[0], session.get(Organization, mine[0].org_id)
    first = session.exec(select(TeamMember).where(TeamMember.user_id == user_id)
                         .order_by(col(TeamMember.created_at), col(TeamMember.team_id))).first()
    if first is not None:
        team = session.get(Team, first.team_id)
        if team is not None:
            return team, session.get(Organization, team.org_id)
    membership = session.exec(select(OrgMember).where(OrgMember.user_id == user_id)
                              .order_by(col(OrgMember.created_at), col(OrgMember.org_id))).first()
    return None, session.get(Organization, membership.org_id) if membership else None
