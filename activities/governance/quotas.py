"""Quotas: limits per organization, team, user or level, set (upserted per scope and type),
listed and deleted, each change audited in the caller's transaction.

Ceiling model (enterprise guide, section 6): a team quota may not exceed its organization's quota
of the same type (``BadRequest``, HTTP 400, checked when the team quota is set); lowering an
organization quota later leaves team quotas as they are. User and level quotas are bounded at run
time: see ``quota_limits`` (re-exported here: ``effective_limits``, ``check_submission``).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import AliasChoices, ConfigDict, Field, field_validator, model_validator
from sqlmodel import Session, col, select

from activities.request_body import RequestBody
from activities.db.models import User, utcnow
from activities.db.models_orgs import Organization, Quota, Team
from activities.errors import BadRequest, NotFound
from activities.identity import orgs
from activities.audit.trail import audit
from activities.identity.permissions import LEVEL_PRIORITY
from activities.identity.principals import Principal
from activities.governance.quota_limits import (ACTIONS, WHOLE_TYPES, EffectiveLimit, QuotaFinding, candidates,
                                              check_submission, current_usage, effective_limits, number)
from activities.secrets.tokens import new_id
from activities.governance.usage import QUOTA_TYPES

__all__ = ["ACTIONS", "QUOTA_TYPES", "WHOLE_TYPES", "EffectiveLimit", "QuotaFinding", "QuotaBody", "ScopedQuotaBody",
           "candidates", "check_submission", "current_usage", "effective_limits", "get", "list_quotas", "set_quota",
           "set_scoped_quota", "delete_quota", "quota_dict", "my_quotas", "user_quotas", "quota_types"]
MAX_LIMIT = 1e12


class QuotaBody(RequestBody):
    """``limit`` (``limit_value`` is accepted too, as in the guide's examples): a finite number
    from 0, whole for ``concurrent_jobs`` and ``daily_jobs``."""
    model_config = ConfigDict(extra="forbid")
    quota_type: str
    limit: float = Field(ge=0, le=MAX_LIMIT, validation_alias=AliasChoices("limit", "limit_value"))
    action: str = "block"

    @field_validator("quota_type")
    @classmethod
    def _type(cls, v: str) -> str:
        if v not in QUOTA_TYPES:
            raise ValueError(f"unknown quota type {v!r}; one of {', '.join(QUOTA_TYPES)}")
        return v

    @field_validator("action")
    @classmethod
    def _action(cls, v: str) -> str:
        if v not in ACTIONS:
            raise ValueError(f"unknown action {v!r}; one of {', '.join(ACTIONS)}")
        return v

    @field_validator("limit", mode="before")
    @classmethod
    def _no_bool(cls, v: Any) -> Any:
        if isinstance(v, bool) or v is None:
            raise ValueError(f"limit must be a number, got {v!r}")
        return v

    @field_validator("limit")
    @classmethod
    def _limit(cls, v: float) -> float:
        if not math.isfinite(v) or not 0 <= v <= MAX_LIMIT:
            raise ValueError(f"limit must be a finite number from 0 to {MAX_LIMIT:.0f}, got {v!r}")
        return v

    @model_validator(mode="after")
    def _whole(self) -> "QuotaBody":
        if self.quota_type in WHOLE_TYPES and not float(self.limit).is_integer():
            raise ValueError(f"limit must be a whole number of jobs for {self.quota_type}, got {self.limit:g}")
        return self


class ScopedQuotaBody(QuotaBody):
    """A user quota (``user_id`` or ``username``) or a level quota (``level``)."""
    scope: Literal["user", "level"]
    user_id: str | None = Field(None, min_length=1, max_length=200)
    username: str | None = Field(None, min_length=1, max_length=200)
    level: str | None = None

    @model_validator(mode="after")
    def _target(self) -> "ScopedQuotaBody":
        if self.scope == "user":
            if (self.user_id is None) == (self.username is None) or self.level is not None:
                raise ValueError("a user quota needs exactly one of user_id and username (and no level)")
        elif self.level not in LEVEL_PRIORITY or self.user_id is not None or self.username is not None:
            raise ValueError(f"a level quota needs level, one of {', '.join(LEVEL_PRIORITY)} "
                             f"(and no user), got {self.level!r}")
        return self


def _scope_name(session: Session, quota: Quota) -> str | None:
    if quota.scope == "org":
        org = session.get(Organization, quota.scope_id)
        return org.slug if org else None
    if quota.scope == "team":
        team = session.get(Team, quota.scope_id)
        return team.slug if team else None
    if quota.scope == "user":
        user = session.get(User, quota.scope_id)
        return user.username if user else None
    return quota.scope_id


def quota_dict(session: Session, quota: Quota) -> dict[str, Any]:
    return {"id": quota.id, "scope": quota.scope, "scope_id": quota.scope_id,
            "scope_name": _scope_name(session, quota), "quota_type": quota.quota_type,
            "limit": number(quota.quota_type, quota.limit_value), "action": quota.action,
            "created_by": quota.created_by, "created_at": quota.created_at, "updated_at": quota.updated_at}


def get(session: Session, quota_id: str) -> Quota:
    quota = session.get(Quota, quota_id)
    if quota is None:
        raise NotFound(f"quota {quota_id!r} not found")
    return quota


def list_quotas(session: Session, scope: str | None = None, scope_id: str | None = None) -> list[Quota]:
    query = select(Quota)
    if scope is not None:
        query = query.where(Quota.scope == scope)
    if scope_id is not None:
        query = query.where(Quota.scope_id == scope_id)
    return list(session.exec(query.order_by(col(Quota.scope), col(Quota.scope_id), col(Quota.quota_type))))


def _find(session: Session, scope: str, scope_id: str, quota_type: str) -> Quota | None:
    return session.exec(select(Quota).where(Quota.scope == scope, Quota.scope_id == scope_id,
                                            Quota.quota_type == quota_type)).first()


def _check_ceiling(session: Session, team: Team, body: QuotaBody) -> None:
    ceiling = _find(session, "org", team.org_id, body.quota_type)
    if ceiling is not None and body.limit > ceiling.limit_value:
        org = session.get(Organization, team.org_id)
        raise BadRequest(f"team {team.slug!r} {body.quota_type} quota of {number(body.quota_type, body.limit)} "
                         f"exceeds the ceiling of organization {org.slug if org else team.org_id!r}: "
                         f"{number(body.quota_type, ceiling.limit_value)}")


def set_quota(session: Session, scope: str, scope_id: str, body: QuotaBody, actor: Principal,
              ip: str | None) -> tuple[Quota, bool]:
    """Create or replace the quota of (scope, scope_id, quota_type); returns it and whether it is new.
    The scope target must exist (the caller resolves it)."""
    if scope == "team":
        team = session.get(Team, scope_id)
        if team is None:
            raise NotFound(f"team {scope_id!r} not found")
        _check_ceiling(session, team, body)
    quota = _find(session, scope, scope_id, body.quota_type)
    created = quota is None
    before = None if created else {"limit": quota.limit_value, "action": quota.action}
    if quota is None:
        quota = Quota(id=new_id("q"), scope=scope, scope_id=scope_id, quota_type=body.quota_type,
                      limit_value=float(body.limit), action=body.action, created_by=actor.username)
    else:
        quota.limit_value, quota.action, quota.updated_at = float(body.limit), body.action, utcnow()
    session.add(quota)
    session.flush()
    audit(session, actor.username, "quota.set", "quota", quota.id,
          {"scope": scope, "scope_id": scope_id, "scope_name": _scope_name(session, quota),
           "quota_type": body.quota_type, "limit": float(body.limit), "action": body.action, "was": before}, ip=ip)
    return quota, created


def set_scoped_quota(session: Session, body: ScopedQuotaBody, actor: Principal, ip: str | None) -> tuple[Quota, bool]:
    """A user quota (the user must exist: NotFound) or a level quota."""
    if body.scope == "level":
        return set_quota(session, "level", str(body.level), body, actor, ip)
    if body.user_id is not None:
        user = session.get(User, body.user_id)
    else:
        user = session.exec(select(User).where(User.username == body.username)).first()
    if user is None:
        raise NotFound(f"user {body.user_id or body.username!r} not found")
    return set_quota(session, "user", user.id, body, actor, ip)


def delete_quota(session: Session, quota_id: str, actor: Principal, ip: str | None) -> None:
    quota = get(session, quota_id)
    details = {"scope": quota.scope, "scope_id": quota.scope_id, "scope_name": _scope_name(session, quota),
               "quota_type": quota.quota_type, "limit": quota.limit_value, "action": quota.action}
    session.delete(quota)
    audit(session, actor.username, "quota.deleted", "quota", quota_id, details, ip=ip)


TYPE_INFO = {
    "concurrent_jobs": ("jobs admitted at once (holding a slot from admission to their end)", "jobs"),
    "daily_jobs": ("jobs charged in the current UTC day", "jobs"),
    "monthly_cost_usd": ("estimated, then actual, cost of the jobs charged in the current UTC month", "USD"),
    "gpu_hours_monthly": ("GPU-hours of the jobs charged in the current UTC month", "GPU-hours"),
}


def quota_types() -> dict[str, Any]:
    """What ``GET /api/quotas/types`` lists: each type, its unit and whether limits are whole numbers,
    the actions and the scopes a quota can be set on."""
    return {"types": [{"quota_type": t, "description": TYPE_INFO[t][0], "unit": TYPE_INFO[t][1],
                       "whole": t in WHOLE_TYPES} for t in QUOTA_TYPES],
            "actions": list(ACTIONS), "scopes": ["org", "team", "user", "level"]}


def my_quotas(session: Session, principal: Principal) -> dict[str, Any]:
    """The caller's effective limits (``user_quotas`` of the caller)."""
    return user_quotas(session, principal.user_id, principal.username, principal.levels)


def user_quotas(session: Session, user_id: str, username: str, levels: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """A user's effective limits, each with its source, action, the current usage of the source's
    scope and what remains; plus the team and organization their jobs are charged to."""
    team, org = orgs.job_scope(session, user_id, None)
    limits = effective_limits(session, user_id, tuple(levels), team.id if team else None, org.id if org else None)
    out = []
    for quota_type in QUOTA_TYPES:
        if quota_type not in limits:
            continue
        limit = limits[quota_type]
        used = current_usage(session, limit)
        out.append({"quota_type": quota_type, "limit": limit.limit, "action": limit.action, "source": limit.source,
                    "scope": limit.scope, "quota_id": limit.quota_id, "usage": used,
                    "remaining": number(quota_type, max(0.0, round(limit.limit - used, 4)))})
    return {"user_id": user_id, "username": username, "levels": list(levels),
            "team": team.slug if team else None, "org": org.slug if org else None, "limits": out}
