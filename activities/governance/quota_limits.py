"""The ceiling model at run time: a user's effective limit per quota type, and the quota check of
a submission.

Candidates for one quota type: the user's own quota if set, else the quota of the user's highest
level that has one; the quota of the team the job is charged to; the quota of its organization.
The effective limit is the smallest candidate. On a tie the strictest action wins (block > notify >
warn), then the broadest scope (org, team, user/level), whose usage includes the narrower ones'.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from activities.db.models import User
from activities.db.models_orgs import Organization, Quota, Team
from activities.db.models_queue import QueueSettings
from activities.governance import usage
from activities.identity.permissions import LEVEL_PRIORITY
from activities.governance.usage import QUOTA_TYPES

WHOLE_TYPES = frozenset({"concurrent_jobs", "daily_jobs"})
ACTIONS = ("warn", "block", "notify")
STRICTNESS = {"warn": 0, "notify": 1, "block": 2}
_BREADTH = {"org": 0, "team": 1, "user": 2, "level": 2}


@dataclass(frozen=True)
class EffectiveLimit:
    """One limit on a user. ``scope``/``scope_id`` say which quota row set it; usage is counted on
    ``usage_scope``/``usage_scope_id`` (a level quota counts the user's own usage)."""
    quota_type: str
    limit: float
    action: str
    source: str  # e.g. "team ml-research", "org acme", "user jsmith", "level researcher"
    scope: str = "user"  # org | team | user | level
    scope_id: str = ""
    quota_id: str = ""
    usage_scope: str = "user"  # user | team | org
    usage_scope_id: str = ""


@dataclass(frozen=True)
class QuotaFinding:
    """A limit the submission would exceed."""
    quota_type: str
    limit: float
    usage_after: float
    action: str
    source: str
    message: str


def number(quota_type: str, value: float) -> float | int:
    """Counts as integers, money and hours as floats (for display and JSON)."""
    return int(value) if quota_type in WHOLE_TYPES and float(value).is_integer() else float(value)


def _rows(session: Session, scope: str, scope_ids: list[str]) -> list[Quota]:
    if not scope_ids:
        return []
    return list(session.exec(select(Quota).where(Quota.scope == scope, col(Quota.scope_id).in_(scope_ids))))


def _limit(row: Quota, source: str, usage_scope: str, usage_scope_id: str) -> EffectiveLimit:
    return EffectiveLimit(row.quota_type, number(row.quota_type, row.limit_value), row.action, source, row.scope,
                          row.scope_id, row.id, usage_scope, usage_scope_id)


def candidates(session: Session, user_id: str, levels: tuple[str, ...], team_id: str | None,
               org_id: str | None) -> dict[str, list[EffectiveLimit]]:
    """Every limit that applies to the user, per quota type (types without any are absent)."""
    found: dict[str, list[EffectiveLimit]] = {}

    def put(limit: EffectiveLimit) -> None:
        found.setdefault(limit.quota_type, []).append(limit)

    user = session.get(User, user_id)
    own = {row.quota_type: row for row in _rows(session, "user", [user_id])}
    by_level: dict[str, Quota] = {}
    for row in sorted(_rows(session, "level", list(levels)), key=lambda r: LEVEL_PRIORITY.get(r.scope_id, 0)):
        by_level[row.quota_type] = row  # highest level last, so it wins
    for quota_type in QUOTA_TYPES:
        if quota_type in own:
            put(_limit(own[quota_type], f"user {user.username if user else user_id}", "user", user_id))
        elif quota_type in by_level:
            row = by_level[quota_type]
            put(_limit(row, f"level {row.scope_id}", "user", user_id))
    for scope, scope_id, model in (("team", team_id, Team), ("org", org_id, Organization)):
        if not scope_id:
            continue
        named = session.get(model, scope_id)
        for row in _rows(session, scope, [scope_id]):
            put(_limit(row, f"{scope} {named.slug if named else scope_id}", scope, scope_id))
    return found


def _rank(limit: EffectiveLimit) -> tuple[float, int, int]:
    return limit.limit, -STRICTNESS.get(limit.action, 2), _BREADTH.get(limit.scope, 2)


def effective_limits(session: Session, user_id: str, levels: tuple[str, ...], team_id: str | None,
                     org_id: str | None) -> dict[str, EffectiveLimit]:
    """The binding limit per quota type: org 100, team 20, user 50 gives 20 from the team."""
    found = candidates(session, user_id, levels, team_id, org_id)
    concurrency = concurrency_limits(session, user_id, levels, team_id, org_id)
    if concurrency:
        found["concurrent_jobs"] = concurrency
    return {quota_type: min(limits, key=_rank) for quota_type, limits in found.items()}


def concurrency_limits(session: Session, user_id: str, levels: tuple[str, ...], team_id: str | None,
                       org_id: str | None) -> list[EffectiveLimit]:
    """Every limit on how many jobs of this user, team and org may hold a slot at once: the queue's
    global and per-user limits (``POST /api/queue/concurrency``, always blocking) and the
    ``concurrent_jobs`` quotas of the user (or level), the team and the org. Admission checks each
    against the usage of its scope; ``GET /api/quotas/me`` reports the most binding one."""
    limits: list[EffectiveLimit] = []
    queue = session.get(QueueSettings, 1)
    if queue is not None and queue.max_concurrent is not None:
        limits.append(EffectiveLimit("concurrent_jobs", queue.max_concurrent, "block", "the queue's max_concurrent",
                                     "global", "", "", "global", ""))
    if queue is not None and queue.user_max_concurrent is not None:
        limits.append(EffectiveLimit("concurrent_jobs", queue.user_max_concurrent, "block",
                                     "the queue's user_max_concurrent", "queue", "", "", "user", user_id))
    limits += candidates(session, user_id, levels, team_id, org_id).get("concurrent_jobs", [])
    return limits


def current_usage(session: Session, limit: EffectiveLimit, exclude_job: str | None = None,
                  with_pending: bool = True) -> float | int:
    """Usage of the limit's type on the scope the limit counts (by default with jobs not evaluated yet)."""
    value = usage.usage(session, limit.quota_type, limit.usage_scope, limit.usage_scope_id,  # type: ignore[arg-type]
                        exclude_job, with_pending)
    return number(limit.quota_type, value)


def _describe(quota_type: str, after: float, limit: float) -> str:
    if quota_type == "daily_jobs":
        return f"{after:g} jobs today (UTC) with this one, limit {limit:g}"
    if quota_type == "monthly_cost_usd":
        return f"${after:,.2f} this month with this job's estimate, limit ${limit:,.2f}"
    if quota_type == "gpu_hours_monthly":
        return f"{after:g} GPU-hours this month with this job's estimate, limit {limit:g}"
    return f"{after:g} with this job, limit {limit:g}"


def check_submission(session: Session, user_id: str, levels: tuple[str, ...], team_id: str | None,
                     org_id: str | None, cost_estimate_usd: float | None,
                     gpu_hours_estimate: float | None, exclude_job: str | None = None,
                     with_pending: bool = True) -> list[QuotaFinding]:
    """The limits one more job would exceed (``daily_jobs``, ``monthly_cost_usd``,
    ``gpu_hours_monthly``; ``concurrent_jobs`` is admission's business).

    Each applicable limit - the user's (or level's), the team's and the org's, not only the smallest
    - is checked against the usage of its own scope plus this job (1 job, its estimated cost, its
    estimated GPU-hours), so an organization ceiling used up by other teams still binds. The job
    itself (``exclude_job``) is left out of the usage; ``with_pending`` counts jobs not evaluated yet
    (the API's early check) or only those charged (the evaluation, which must never refuse a job for
    another that may still be refused). Fail closed: a cost or GPU-hour estimate that
    cannot be made exceeds every limit of that type, with the reason named. Findings come strictest
    action first, then smallest limit; ``message`` names the limit, its source and the usage, not the
    action (the caller words the consequence).
    """
    adds = {"daily_jobs": 1.0, "monthly_cost_usd": cost_estimate_usd, "gpu_hours_monthly": gpu_hours_estimate}
    findings: list[tuple[tuple[float, int, int], QuotaFinding]] = []
    for quota_type, found in candidates(session, user_id, levels, team_id, org_id).items():
        if quota_type not in adds:
            continue
        for limit in found:
            added = adds[quota_type]
            if added is None:
                what = "cost" if quota_type == "monthly_cost_usd" else "GPU-hours"
                finding = QuotaFinding(quota_type, limit.limit, limit.limit, limit.action, limit.source,
                                       f"{quota_type} quota of {limit.source} cannot be checked: the {what} of this "
                                       "job cannot be estimated (the config needs estimated_hours and a hardware_type "
                                       "with a known rate)")
                findings.append(((-STRICTNESS.get(limit.action, 2), limit.limit, _BREADTH.get(limit.scope, 2)), finding))
                continue
            after = round(float(current_usage(session, limit, exclude_job, with_pending)) + float(added), 4)
            if after <= limit.limit:
                continue
            message = (f"{quota_type} quota of {limit.source} would be exceeded: "
                       f"{_describe(quota_type, after, limit.limit)}")
            finding = QuotaFinding(quota_type, limit.limit, number(quota_type, after), limit.action, limit.source,
                                   message)
            findings.append(((-STRICTNESS.get(limit.action, 2), limit.limit, _BREADTH.get(limit.scope, 2)), finding))
    return [finding for _, finding in sorted(findings, key=lambda pair: pair[0])]
