"""Answers of the organization routes: organizations and teams (``activities.identity.orgs``),
their members (``activities.identity.org_members.member_dict``) and removals."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from api.schemas.base import Answer


class Org(Answer):
    id: str
    slug: str
    name: str
    description: str | None
    member_count: int
    team_count: int
    created_at: datetime
    updated_at: datetime


class OrgList(Answer):
    orgs: list[Org]


class Team(Answer):
    id: str
    org_id: str
    org_slug: str | None
    slug: str
    name: str
    description: str | None
    member_count: int
    created_at: datetime
    updated_at: datetime


class TeamList(Answer):
    teams: list[Team]


class Member(Answer):
    user_id: str
    username: str
    display_name: str | None
    email: str | None
    role: str = Field(description="organizations: member or admin; teams: member, lead or admin")
    created_at: datetime = Field(description="when they joined")


class MemberList(Answer):
    members: list[Member]


class OrgMemberRemoved(Answer):
    removed: str = Field(description="the user's id, as given in the path")
    org_id: str


class TeamMemberRemoved(Answer):
    removed: str = Field(description="the user's id, as given in the path")
    team_id: str
