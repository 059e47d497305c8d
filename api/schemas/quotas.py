"""Answers of the quota routes: a quota (``activities.governance.quotas.quota_dict``), lists, the
type catalogue and a user's effective limits with their usage."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from api.schemas.base import Answer, Number

Scope = Literal["org", "team", "user", "level"]


class Quota(Answer):
    id: str
    scope: Scope
    scope_id: str = Field(description="an org, team or user id, or a level name")
    scope_name: str | None = Field(description="the org's or team's slug, the user's name or the level")
    quota_type: str
    limit: Number
    action: str = Field(description="warn, block or notify")
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class QuotaList(Answer):
    quotas: list[Quota]


class QuotaType(Answer):
    quota_type: str
    description: str
    unit: str
    whole: bool = Field(description="limits are whole numbers")


class QuotaTypes(Answer):
    types: list[QuotaType]
    actions: list[str]
    scopes: list[str]


class EffectiveLimit(Answer):
    quota_type: str
    limit: Number
    action: str
    source: str = Field(description="what set it, e.g. \"team ml-research\" or \"the queue's max_concurrent\"")
    scope: str = Field(description="org, team, user, level, or global / queue for the queue's own limits")
    quota_id: str = Field(description="the quota row (empty for the queue's limits)")
    usage: Number = Field(description="current usage on the limit's scope")
    remaining: Number


class UserQuotas(Answer):
    user_id: str
    username: str
    levels: list[str]
    team: str | None = Field(description="slug of the team the user's jobs are charged to")
    org: str | None = Field(description="slug of the organization the user's jobs are charged to")
    limits: list[EffectiveLimit] = Field(description="the binding limit of each quota type that has one")
