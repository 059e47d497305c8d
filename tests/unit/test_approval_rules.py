"""Approval rules against a real SQLite file: validation, CRUD with audit, evaluation order and conditions."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError
from sqlmodel import Session, select

from activities.db.models import AuditEntry, Job
from activities.errors import Conflict, InvalidInput, NotFound
from activities.governance import approval_rules as ar
from activities.governance import approval_match as am
from activities.governance.approval_match import RuleContext
from activities.governance.approval_rules import RuleCreate, RulePatch
from activities.identity.principals import Principal

ADMIN = Principal(user_id="u_admin", username="admin", levels=("admin",), permissions=frozenset())
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)
MIDNIGHT = datetime(2026, 3, 10, tzinfo=timezone.utc)


def add(db: Session, **fields: Any) -> ar.ApprovalRule:
    fields.setdefault("name", f"r{len(ar.list_rules(db))}")
    rule = ar.create(db, RuleCreate(**fields), ADMIN, "10.0.0.1")
    db.commit()
    return rule


def ctx(**over: Any) -> RuleContext:
    base: dict[str, Any] = dict(job_id="job-new", user_id="u1", levels=("researcher",), cost_estimate_usd=10.0,
                                hardware_type="a100-80gb", config_name="team-x-small", provider="local")
    return RuleContext(**{**base, **over})


def job(db: Session, job_id: str, created_at: datetime, owner: str = "u1") -> None:
    db.add(Job(id=job_id, owner_id=owner, owner_name=owner, config_name="c", target="local", request_hash="h",
               created_at=created_at))
    db.commit()


def fired(db: Session, c: RuleContext, now: datetime = NOW) -> str | None:
    rule = am.evaluate(db, c, now=now)
    return rule.name if rule else None


# ---- validation ---------------------------------------------------------------------------

@pytest.mark.parametrize("condition, threshold, stored", [
    ("cost_exceeds", "50", "50"), ("cost_exceeds", 50, "50"), ("cost_exceeds", 12.5, "12.5"),
    ("cost_exceeds", " 50.00 ", "50"), ("cost_exceeds", "1e2", "100"), ("cost_exceeds", 0, "0"),
    ("daily_jobs_exceed", "5", "5"), ("daily_jobs_exceed", 5.0, "5"),
    ("hardware_type", "a100*", "a100*"), ("config_pattern", "prod-*", "prod-*"), ("provider", 4090, "4090"),
    ("first_job", None, None), ("first_job", "ignored", None),
])
def test_thresholds_are_stored_as_canonical_strings(db, condition, threshold, stored):
    rule = add(db, condition=condition, threshold=threshold)
    assert ar.get(db, rule.id).threshold == stored


@pytest.mark.parametrize("condition, threshold, needle", [
    ("cost_exceeds", "abc", "threshold must be a number"), ("cost_exceeds", None, "threshold must be a number"),
    ("cost_exceeds", "-1", "threshold must be a number"), ("cost_exceeds", "nan", "threshold must be a number"),
    ("cost_exceeds", "inf", "threshold must be a number"), ("cost_exceeds", "1e400", "threshold must be a number"),
    ("daily_jobs_exceed", "x", "threshold must be a number"), ("daily_jobs_exceed", "2.5", "whole number"),
    ("hardware_type", "", "non-empty glob"), ("config_pattern", None, "non-empty glob"),
    ("provider", "   ", "non-empty glob"),
])
def test_bad_thresholds_are_refused(db, condition, threshold, needle):
    with pytest.raises(InvalidInput, match=needle):
        add(db, condition=condition, threshold=threshold)
    assert ar.list_rules(db) == []


@pytest.mark.parametrize("fields, needle", [
    ({"condition": "moon_phase"}, "unknown condition 'moon_phase'; one of cost_exceeds"),
    ({"condition": "first_job", "required_approver_level": "wizard"}, "unknown level 'wizard'"),
    ({"condition": "first_job", "exempt_levels": ["admin", "boss"]}, "unknown level 'boss'"),
    ({"condition": "first_job", "applies_to_level": "boss"}, "unknown level 'boss'"),
    ({"condition": "first_job", "threshold": True}, "string or a number"),
    ({"condition": "first_job", "colour": "red"}, "Extra inputs"),
    ({"condition": "first_job", "name": ""}, "at least 1"),
    ({"condition": "first_job", "name": "x" * 101}, "at most 100"),
    ({"condition": "first_job", "applies_to_provider": ""}, "at least 1"),
])
def test_bad_bodies_fail_pydantic_validation(fields, needle):
    with pytest.raises(ValidationError, match=needle):
        RuleCreate(**{"name": "n", **fields})


def test_crud_is_audited_and_names_are_unique(db):
    rule = add(db, name="high_cost", condition="cost_exceeds", threshold="50", exempt_levels=["admin", "admin"])
    shown = ar.to_dict(rule)
    assert {k: shown[k] for k in ("name", "condition", "threshold", "exempt_levels", "applies_to_provider",
                                  "applies_to_level")} == {"name": "high_cost", "condition": "cost_exceeds",
                                                           "threshold": "50", "exempt_levels": ["admin"],
                                                           "applies_to_provider": None, "applies_to_level": None}
    assert (rule.required_approver_level, rule.priority, rule.enabled, rule.created_by) == ("lead", 0, True, "admin")
    with pytest.raises(Conflict, match="high_cost"):
        add(db, name="high_cost", condition="first_job")
    db.rollback()
    other = add(db, name="other", condition="first_job")
    with pytest.raises(Conflict):
        ar.patch(db, other.id, RulePatch(name="high_cost"), ADMIN, None)
    db.rollback()
    patched = ar.patch(db, rule.id, RulePatch(threshold=75, priority=3), ADMIN, None)
    db.commit()
    assert (patched.threshold, patched.priority, patched.condition) == ("75", 3, "cost_exceeds")
    ar.delete(db, other.id, ADMIN, None)
    db.commit()
    with pytest.raises(NotFound):
        ar.get(db, other.id)
    with pytest.raises(NotFound):
        ar.patch(db, "ar_missing", RulePatch(enabled=False), ADMIN, None)
    actions = [(e.action, e.target_id) for e in db.exec(select(AuditEntry).order_by(AuditEntry.id))]
    assert actions == [("approval_rule.created", rule.id), ("approval_rule.created", other.id),
                       ("approval_rule.updated", rule.id), ("approval_rule.deleted", other.id)]
    updated = db.exec(select(AuditEntry).where(AuditEntry.action == "approval_rule.updated")).one()
    assert updated.details["changes"] == {"threshold": "75", "priority": 3}


def test_patch_revalidates_the_merged_rule(db):
    hw = add(db, condition="hardware_type", threshold="a100*")
    with pytest.raises(InvalidInput, match="threshold must be a number"):
        ar.patch(db, hw.id, RulePatch(condition="cost_exceeds"), ADMIN, None)
    db.rollback()
    assert ar.get(db, hw.id).condition == "hardware_type"
    with pytest.raises(InvalidInput, match="condition must not be null"):
        ar.patch(db, hw.id, RulePatch(condition=None), ADMIN, None)
    db.rollback()
    moved = ar.patch(db, hw.id, RulePatch(condition="cost_exceeds", threshold="20"), ADMIN, None)
    assert (moved.condition, moved.threshold) == ("cost_exceeds", "20")
    first = ar.patch(db, hw.id, RulePatch(condition="first_job", exempt_levels=None), ADMIN, None)
    assert (first.threshold, first.exempt_levels) == (None, [])


# ---- evaluation ---------------------------------------------------------------------------

def test_every_condition(db):
    cases = [
        ({"condition": "cost_exceeds", "threshold": "50"}, {"cost_estimate_usd": 50.01}, {"cost_estimate_usd": 50.0}),
        ({"condition": "cost_exceeds", "threshold": "50"}, {"cost_estimate_usd": None}, {"cost_estimate_usd": 49.99}),
        ({"condition": "hardware_type", "threshold": "a100*"}, {"hardware_type": "a100-80gb"},
         {"hardware_type": "h100"}),
        ({"condition": "hardware_type", "threshold": "a100*"}, {"hardware_type": "a100"}, {"hardware_type": "A100"}),
        ({"condition": "hardware_type", "threshold": "a100*"}, {"hardware_type": None}, {"hardware_type": "t4"}),
        ({"condition": "config_pattern", "threshold": "prod-*"}, {"config_name": "prod-run"}, {"config_name": "dev"}),
        ({"condition": "provider", "threshold": "replicate"}, {"provider": "replicate"}, {"provider": "local"}),
        ({"condition": "provider", "threshold": "w*"}, {"provider": "worker"}, {"provider": "auto"}),
    ]
    for fields, hit, miss in cases:
        rule = add(db, **fields)
        assert fired(db, ctx(**hit)) == rule.name, (fields, hit)
        assert fired(db, ctx(**miss)) is None, (fields, miss)
        ar.delete(db, rule.id, ADMIN, None)
        db.commit()


def test_first_job_ignores_the_job_itself_and_other_users(db):
    add(db, name="newcomer", condition="first_job")
    assert fired(db, ctx()) == "newcomer"
    job(db, "job-new", NOW)  # the job's own row does not make it a second job
    job(db, "job-of-u2", NOW - timedelta(days=30), owner="u2")
    assert fired(db, ctx()) == "newcomer"
    job(db, "job-old", NOW - timedelta(days=30))
    assert fired(db, ctx()) is None


def test_daily_jobs_exceed_counts_this_job_and_only_today_utc(db):
    add(db, name="busy", condition="daily_jobs_exceed", threshold="2")
    job(db, "job-yesterday", MIDNIGHT - timedelta(microseconds=1))
    job(db, "job-u2", NOW, owner="u2")
    job(db, "job-1", MIDNIGHT)  # exactly 00:00 UTC counts as today
    assert fired(db, ctx()) is None  # this job is the 2nd today: not more than 2
    job(db, "job-new", NOW)  # its own row is counted once, not twice
    assert fired(db, ctx()) is None
    job(db, "job-2", NOW - timedelta(hours=1))
    assert fired(db, ctx()) == "busy"  # 3rd today
    assert fired(db, ctx(), now=MIDNIGHT + timedelta(days=1)) is None  # a new day: only this job counts
    assert fired(db, ctx(user_id="u2")) is None


def test_daily_threshold_zero_stops_every_job(db):
    add(db, name="none_allowed", condition="daily_jobs_exceed", threshold="0")
    assert fired(db, ctx()) == "none_allowed"


def test_priority_then_age_decides_and_first_match_wins(db):
    add(db, name="low", condition="cost_exceeds", threshold="1", priority=-5)
    add(db, name="old", condition="config_pattern", threshold="*", priority=10)
    add(db, name="young", condition="config_pattern", threshold="*", priority=10)
    add(db, name="top", condition="hardware_type", threshold="h100*", priority=20)
    assert [r.name for r in ar.list_rules(db)] == ["top", "old", "young", "low"]
    assert fired(db, ctx(hardware_type="h100")) == "top"
    assert fired(db, ctx()) == "old"
    old = next(r for r in ar.list_rules(db) if r.name == "old")
    ar.patch(db, old.id, RulePatch(enabled=False), ADMIN, None)
    db.commit()
    assert fired(db, ctx()) == "young"
    assert [r.name for r in ar.list_rules(db, enabled=False)] == ["old"]
    assert len(ar.list_rules(db, enabled=True)) == 3


def test_disabled_rules_never_fire(db):
    add(db, name="off", condition="first_job", enabled=False)
    assert fired(db, ctx()) is None


def test_exempt_levels_skip_the_rule_and_evaluation_continues(db):
    add(db, name="pricey", condition="cost_exceeds", threshold="5", priority=10, exempt_levels=["lead", "admin"])
    add(db, name="big_gpu", condition="hardware_type", threshold="a100*", priority=1)
    assert fired(db, ctx(levels=("researcher", "viewer"))) == "pricey"
    assert fired(db, ctx(levels=("lead",))) == "big_gpu"
    assert fired(db, ctx(levels=("lead",), hardware_type="t4")) is None


def test_applies_to_level_and_provider_scope_rules(db):
    add(db, name="researchers_only", condition="first_job", applies_to_level="researcher", priority=5)
    add(db, name="cloud_only", condition="cost_exceeds", threshold="1", applies_to_provider="repl*")
    assert fired(db, ctx(levels=("researcher", "viewer"))) == "researchers_only"
    assert fired(db, ctx(levels=("lead",))) is None
    assert fired(db, ctx(levels=("lead",), provider="replicate")) == "cloud_only"
    assert fired(db, ctx(levels=("lead",), provider="Replicate")) is None  # globs are case-sensitive


def test_a_rule_that_cannot_be_read_applies_and_says_why(db):
    """Fail closed: an unreadable threshold or an unknown condition (written by an older or newer
    version, or by hand) makes the rule apply, with the reason named."""
    bad = add(db, name="bad", condition="cost_exceeds", threshold="5", priority=9)
    bad.threshold = "five"
    db.add(bad)
    db.commit()
    add(db, name="good", condition="first_job")
    assert fired(db, ctx()) == "bad"
    assert "unreadable threshold 'five'" in am.describe_match(bad, ctx())
    bad.condition, bad.threshold = "moon_phase", None
    db.add(bad)
    db.commit()
    assert fired(db, ctx()) == "bad"
    assert "unknown condition 'moon_phase'" in am.describe_match(bad, ctx())


def test_an_unknown_cost_exceeds_every_threshold(db):
    rule = add(db, name="pricey", condition="cost_exceeds", threshold="1000000")
    assert fired(db, ctx(cost_estimate_usd=None)) == "pricey"
    assert "cannot be estimated" in am.describe_match(rule, ctx(cost_estimate_usd=None))


def test_describe_match_gives_a_reason_naming_the_rule(db):
    rule = add(db, name="high_cost", condition="cost_exceeds", threshold="50")
    assert am.describe_match(rule, ctx(cost_estimate_usd=100.0)) == \
        "estimated cost $100.00 exceeds $50.00 (rule high_cost)"
    reasons = {
        "hardware_type": ("a100*", "hardware type 'a100-80gb' matches 'a100*' (rule r1)"),
        "config_pattern": ("team-*", "config 'team-x-small' matches 'team-*' (rule r2)"),
        "provider": ("loc*", "provider 'local' matches 'loc*' (rule r3)"),
        "daily_jobs_exceed": ("5", "more than 5 jobs submitted today (UTC) (rule r4)"),
        "first_job": (None, "first job of this user (rule r5)"),
    }
    for condition, (threshold, text) in reasons.items():
        assert am.describe_match(add(db, condition=condition, threshold=threshold), ctx()) == text


def test_conditions_catalogue():
    catalogue = {c["name"]: c for c in ar.conditions()}
    assert list(catalogue) == ["cost_exceeds", "hardware_type", "daily_jobs_exceed", "first_job", "config_pattern",
                               "provider"]
    assert {name: c["threshold_kind"] for name, c in catalogue.items()} == {
        "cost_exceeds": "number", "hardware_type": "glob", "daily_jobs_exceed": "integer", "first_job": "none",
        "config_pattern": "glob", "provider": "glob"}
    assert all(c["description"] for c in catalogue.values())
