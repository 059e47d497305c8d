"""Evaluating the approval rules against one submission: the first enabled rule that applies and
matches decides, and its reason is worded for the people concerned.

Rules are evaluated in order: higher ``priority`` first, ties by creation time (older first). Before
its condition is checked a rule is skipped when it is scoped away from the job (``applies_to_level``
not held by the submitter, ``applies_to_provider`` not matching the job's provider) or when the
submitter holds one of its ``exempt_levels``. Fail closed: an unknown cost exceeds every
``cost_exceeds`` threshold, and a stored rule that cannot be read applies.
"""

from __future__ import annotations

import fnmatch
import logging
from dataclasses import dataclass
from datetime import datetime, time, timezone

from sqlalchemy import func
from sqlmodel import Session, col, select

from activities.db.models import Job, utcnow
from activities.db.models_approvals import ApprovalRule
from activities.errors import InvalidInput
from activities.governance.approval_rules import CONDITIONS, list_rules, normalize_threshold

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RuleContext:
    """What the rules see of one submission (the job row may already exist: ``job_id`` is excluded
    from the submitter's job counts)."""
    job_id: str
    user_id: str
    levels: tuple[str, ...]
    cost_estimate_usd: float | None
    hardware_type: str | None
    config_name: str
    provider: str


def _other_jobs(session: Session, ctx: RuleContext, since: datetime | None = None) -> int:
    query = select(func.count()).select_from(Job).where(Job.owner_id == ctx.user_id, Job.id != ctx.job_id)
    if since is not None:
        query = query.where(col(Job.created_at) >= since)
    return int(session.exec(query).one())


def _glob(value: str | None, pattern: str | None) -> bool:
    return value is not None and pattern is not None and fnmatch.fnmatchcase(value, pattern)


def _in_scope(rule: ApprovalRule, ctx: RuleContext) -> bool:
    if rule.applies_to_level and rule.applies_to_level not in ctx.levels:
        return False
    if rule.applies_to_provider and not _glob(ctx.provider, rule.applies_to_provider):
        return False
    return not set(rule.exempt_levels or ()) & set(ctx.levels)


def unreadable(rule: ApprovalRule) -> str | None:
    """What is wrong with a stored rule that cannot be evaluated, or None."""
    if rule.condition not in CONDITIONS:
        return f"unknown condition {rule.condition!r}"
    try:
        if normalize_threshold(rule.condition, rule.threshold) is None and CONDITIONS[rule.condition][0] != "none":
            raise InvalidInput("missing threshold")
    except InvalidInput:
        return f"unreadable threshold {rule.threshold!r} for condition {rule.condition}"
    return None


def _matches(session: Session, rule: ApprovalRule, ctx: RuleContext, now: datetime) -> bool:
    condition, threshold = rule.condition, rule.threshold
    if condition == "cost_exceeds":  # an unknown cost exceeds every threshold (fail closed)
        return ctx.cost_estimate_usd is None or ctx.cost_estimate_usd > float(threshold or "nan")
    if condition == "hardware_type":  # a job that names no hardware may land on any (fail closed)
        return ctx.hardware_type is None or _glob(ctx.hardware_type, threshold)
    if condition == "config_pattern":
        return _glob(ctx.config_name, threshold)
    if condition == "provider":
        return _glob(ctx.provider, threshold)
    if condition == "daily_jobs_exceed":
        midnight = datetime.combine(now.astimezone(timezone.utc).date(), time.min, tzinfo=timezone.utc)
        return _other_jobs(session, ctx, since=midnight) + 1 > int(threshold or "")
    if condition == "first_job":
        return _other_jobs(session, ctx) == 0
    raise ValueError(f"unknown condition {condition!r}")


def evaluate(session: Session, ctx: RuleContext, now: datetime | None = None) -> ApprovalRule | None:
    """The first enabled rule (in ``list_rules`` order) that applies to and matches the submission.

    Conditions: ``cost_exceeds`` when the cost is strictly greater than the threshold, or unknown;
    ``hardware_type`` / ``config_pattern`` / ``provider``: case-sensitive glob on the hardware
    type, config name and provider; ``first_job`` when the submitter has no other job row;
    ``daily_jobs_exceed``: the submitter's jobs created since 00:00 UTC of ``now`` (default: the
    current time), counting this job once whether or not its row exists yet, is strictly greater
    than the threshold - threshold 5 lets 5 jobs a day through and stops the 6th; 0 stops every job.
    Fail closed: a rule whose stored condition or threshold cannot be read matches (and says why).
    """
    now = now or utcnow()
    for rule in list_rules(session, enabled=True):
        if not _in_scope(rule, ctx):
            continue
        problem = unreadable(rule)
        if problem is not None:
            log.warning("approval rule %s has an %s; it applies until fixed", rule.id, problem)
            return rule
        try:
            if _matches(session, rule, ctx, now):
                return rule
        except ValueError:
            log.warning("approval rule %s could not be evaluated; it applies until fixed", rule.id)
            return rule
    return None


_REASONS: dict[str, str] = {
    "hardware_type": "hardware type {ctx.hardware_type!r} matches {t!r}",
    "config_pattern": "config {ctx.config_name!r} matches {t!r}",
    "provider": "provider {ctx.provider!r} matches {t!r}",
    "daily_jobs_exceed": "more than {t} jobs submitted today (UTC)",
    "first_job": "first job of this user",
}


def describe_match(rule: ApprovalRule, ctx: RuleContext) -> str:
    """A human reason for the approval requirement, naming the rule."""
    problem = unreadable(rule)
    if problem is not None:
        return f"the rule cannot be read ({problem}), so it applies until fixed (rule {rule.name})"
    if rule.condition == "cost_exceeds" and ctx.cost_estimate_usd is None:
        reason = (f"the cost of this job cannot be estimated (no estimated_hours or no known rate for hardware "
                  f"{ctx.hardware_type!r}), so it counts as exceeding ${float(rule.threshold or 0):,.2f}")
    elif rule.condition == "hardware_type" and ctx.hardware_type is None:
        reason = f"the config names no hardware_type, so it may run on hardware matching {rule.threshold!r}"
    elif rule.condition == "cost_exceeds":
        reason = f"estimated cost ${ctx.cost_estimate_usd:,.2f} exceeds ${float(rule.threshold or 0):,.2f}"
    else:
        reason = _REASONS.get(rule.condition, "condition {c} matched").format(ctx=ctx, t=rule.threshold,
                                                                              c=rule.condition)
    return f"{reason} (rule {rule.name})"
