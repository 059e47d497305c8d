"""Organizations, teams, their members, and quotas (the ceiling model)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from activities.db.models import utcnow


class Organization(SQLModel, table=True):
    id: str = Field(primary_key=True)
    slug: str = Field(unique=True, index=True)
    name: str
    description: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class OrgMember(SQLModel, table=True):
    org_id: str = Field(foreign_key="organization.id", primary_key=True)
    user_id: str = Field(foreign_key="user.id", primary_key=True, index=True)
    role: str = "member"  # member | admin
    created_at: datetime = Field(default_factory=utcnow)


class Team(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("org_id", "slug"),)
    id: str = Field(primary_key=True)
    org_id: str = Field(foreign_key="organization.id", index=True)
    slug: str
    name: str
    description: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class TeamMember(SQLModel, table=True):
    team_id: str = Field(foreign_key="team.id", primary_key=True)
    user_id: str = Field(foreign_key="user.id", primary_key=True, index=True)
    role: str = "member"  # member | lead | admin
    created_at: datetime = Field(default_factory=utcnow)


class Quota(SQLModel, table=True):
    """One limit of one scope. ``scope_id`` is an org id, a team id, a user id or a level name."""
    __table_args__ = (UniqueConstraint("scope", "scope_id", "quota_type"),)
    id: str = Field(primary_key=True)
    scope: str = Field(index=True)  # org | team | user | level
    scope_id: str = Field(index=True)
    quota_type: str  # concurrent_jobs | daily_jobs | monthly_cost_usd | gpu_hours_monthly
    limit_value: float
    action: str = "block"  # warn | block | notify
    created_by: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
