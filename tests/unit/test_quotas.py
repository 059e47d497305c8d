"""Organizations, teams and quotas against a real SQLite file: the ceiling model, the quota check
of a submission, the scope a job is charged to, and cascades of deletions."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session, select

from activities.db.models import AuditEntry, Job, User, UserLevel
from activities.db.models_orgs import Organization, OrgMember, Quota, Team, TeamMember
from activities.db.models_queue import Admission
from activities.errors import BadRequest, Conflict, Forbidden, InvalidInput, NotFound
from activities.identity import org_members
from activities.identity import orgs
from activities.governance import quotas
from activities.identity.org_members import OrgMemberAdd, TeamMemberAdd
from activities.identity.orgs import OrgCreate, TeamCreate
from activities.identity.principals import Principal
from activities.governance.quotas import QuotaBody, ScopedQuotaBody

ADMIN = Principal(user_id="u_admin", username="admin", levels=("admin",), permissions=frozenset({"org.create"}))
IP = "10.0.0.9"


def user(db: Session, name: str, *levels: str) -> User:
    row = User(id=f"u_{name}", username=name)
    db.add(row)
    for level in levels or ("researcher",):
        db.add(UserLevel(user_id=row.id, level=level))
    db.commit()
    return row


def org(db: Session, slug: str) -> Organization:
    made = orgs.create_org(db, OrgCreate(name=slug.title(), slug=slug), ADMIN, IP)
    db.commit()
    return made


def team(db: Session, parent: Organization, slug: str, *members: User) -> Team:
    made = orgs.create_team(db, parent, TeamCreate(name=slug, slug=slug), ADMIN, IP)
    for member in members:
        org_members.add_team_member(db, parent, made, TeamMemberAdd(user_id=member.id), ADMIN, IP)
    db.commit()
    return made


def quota(db: Session, scope: str, scope_id: str, quota_type: str, limit: float, action: str = "block") -> Quota:
    row, _ = quotas.set_quota(db, scope, scope_id, QuotaBody(quota_type=quota_type, limit=limit, action=action),
                              ADMIN, IP)
    db.commit()
    return row


def job(db: Session, owner: User, n: int, **fields: Any) -> None:
    db.add(Job(id=f"j-{owner.username}-{n}", owner_id=owner.id, owner_name=owner.username, config_name="c",
               target="local", request_hash="h", **fields))
    db.commit()


@pytest.fixture
def acme(db: Session) -> dict[str, Any]:
    """Org acme with team ml-research holding jsmith (researcher)."""
    jsmith = user(db, "jsmith", "researcher")
    acme = org(db, "acme")
    ml = team(db, acme, "ml-research", jsmith)
    return {"user": jsmith, "org": acme, "team": ml}


def limits(db: Session, who: User, levels: tuple[str, ...], t: Team | None, o: Organization | None) -> dict:
    found = quotas.effective_limits(db, who.id, levels, t.id if t else None, o.id if o else None)
    return {k: (v.limit, v.action, v.source) for k, v in found.items()}


# ---- the ceiling model -----------------------------------------------------------------------

def test_guide_example_team_ceiling_applies(db, acme):
    quota(db, "org", acme["org"].id, "concurrent_jobs", 100)
    quota(db, "team", acme["team"].id, "concurrent_jobs", 20)
    quota(db, "user", acme["user"].id, "concurrent_jobs", 50)
    assert limits(db, acme["user"], ("researcher",), acme["team"], acme["org"]) == {
        "concurrent_jobs": (20, "block", "team ml-research")}
    quota(db, "user", acme["user"].id, "concurrent_jobs", 5)  # upsert: same row, smaller limit
    assert limits(db, acme["user"], ("researcher",), acme["team"], acme["org"])["concurrent_jobs"] == \
        (5, "block", "user jsmith")
    assert len(quotas.list_quotas(db, "user")) == 1


def test_level_quota_when_no_user_quota(db, acme):
    rae = user(db, "rae", "lead", "researcher")
    quota(db, "level", "researcher", "daily_jobs", 10)
    assert limits(db, rae, ("lead", "researcher"), None, None) == {"daily_jobs": (10, "block", "level researcher")}
    quota(db, "level", "lead", "daily_jobs", 40, "warn")  # the highest level with a quota is the candidate
    assert limits(db, rae, ("lead", "researcher"), None, None) == {"daily_jobs": (40, "warn", "level lead")}
    quota(db, "user", rae.id, "daily_jobs", 60)  # the user's own quota replaces the level's, even if larger
    assert limits(db, rae, ("lead", "researcher"), None, None) == {"daily_jobs": (60, "block", "user rae")}
    quota(db, "org", acme["org"].id, "daily_jobs", 30)
    assert limits(db, rae, ("lead", "researcher"), None, acme["org"]) == {"daily_jobs": (30, "block", "org acme")}


def test_lowering_the_org_later_keeps_team_quota_and_minimum_applies(db, acme):
    quota(db, "org", acme["org"].id, "monthly_cost_usd", 100)
    team_quota = quota(db, "team", acme["team"].id, "monthly_cost_usd", 20.5)
    quota(db, "org", acme["org"].id, "monthly_cost_usd", 10)
    assert db.get(Quota, team_quota.id).limit_value == 20.5
    assert limits(db, acme["user"], ("researcher",), acme["team"], acme["org"]) == {
        "monthly_cost_usd": (10.0, "block", "org acme")}


def test_ties_take_the_strictest_action(db, acme):
    quota(db, "team", acme["team"].id, "gpu_hours_monthly", 20, "warn")
    quota(db, "user", acme["user"].id, "gpu_hours_monthly", 20, "notify")
    assert limits(db, acme["user"], ("researcher",), acme["team"], acme["org"])["gpu_hours_monthly"] == \
        (20.0, "notify", "user jsmith")
    quota(db, "org", acme["org"].id, "gpu_hours_monthly", 20, "block")
    assert limits(db, acme["user"], ("researcher",), acme["team"], acme["org"])["gpu_hours_monthly"] == \
        (20.0, "block", "org acme")


def test_team_quota_above_org_is_refused_with_400(db, acme):
    quota(db, "org", acme["org"].id, "concurrent_jobs", 100)
    with pytest.raises(BadRequest) as refused:
        quota(db, "team", acme["team"].id, "concurrent_jobs", 150)
    assert refused.value.status_code == 400
    assert "150" in refused.value.detail and "100" in refused.value.detail and "acme" in refused.value.detail
    db.rollback()
    assert quotas.list_quotas(db, "team") == []
    quota(db, "team", acme["team"].id, "concurrent_jobs", 100)  # equal to the ceiling is fine
    quota(db, "team", acme["team"].id, "daily_jobs", 1000)  # no org quota of that type: no ceiling
    actions = [e.action for e in db.exec(select(AuditEntry).where(AuditEntry.target_type == "quota"))]
    assert actions == ["quota.set"] * 3


def test_scoped_quota_and_delete(db, acme):
    row, created = quotas.set_scoped_quota(db, ScopedQuotaBody(scope="user", username="jsmith",
                                                               quota_type="daily_jobs", limit=3), ADMIN, IP)
    assert created and (row.scope, row.scope_id) == ("user", acme["user"].id)
    assert quotas.quota_dict(db, row)["scope_name"] == "jsmith" and quotas.quota_dict(db, row)["limit"] == 3
    with pytest.raises(NotFound, match="'ghost'"):
        quotas.set_scoped_quota(db, ScopedQuotaBody(scope="user", username="ghost", quota_type="daily_jobs",
                                                    limit=3), ADMIN, IP)
    quotas.delete_quota(db, row.id, ADMIN, IP)
    db.commit()
    with pytest.raises(NotFound):
        quotas.get(db, row.id)


# ---- the submission check --------------------------------------------------------------------

def test_check_submission_reports_exceeded_limits(db, acme):
    jsmith, ml, o = acme["user"], acme["team"], acme["org"]
    quota(db, "user", jsmith.id, "daily_jobs", 2)
    quota(db, "team", ml.id, "monthly_cost_usd", 100, "warn")
    quota(db, "org", o.id, "gpu_hours_monthly", 50, "notify")
    quota(db, "org", o.id, "concurrent_jobs", 0)  # admission's business, never reported here
    job(db, jsmith, 1, team_id=ml.id, org_id=o.id, status="completed", cost_usd=80.0, gpu_hours=10.0)
    job(db, jsmith, 2, team_id=ml.id, org_id=o.id, status="failed")

    def check(cost: float | None, hours: float | None) -> list[quotas.QuotaFinding]:
        return quotas.check_submission(db, jsmith.id, ("researcher",), ml.id, o.id, cost, hours)

    found = check(30.0, 5.0)
    assert [(f.quota_type, f.limit, f.usage_after, f.action, f.source) for f in found] == [
        ("daily_jobs", 2, 3, "block", "user jsmith"),
        ("monthly_cost_usd", 100.0, 110.0, "warn", "team ml-research")]
    assert "daily_jobs quota of user jsmith would be exceeded" in found[0].message and "limit 2" in found[0].message
    assert "$110.00" in found[1].message and "$100.00" in found[1].message
    found = check(None, 45.0)  # an unknown cost exceeds the cost quota (fail closed), with the reason named
    assert [(f.quota_type, f.usage_after, f.action) for f in found] == [("daily_jobs", 3, "block"),
                                                                         ("gpu_hours_monthly", 55.0, "notify"),
                                                                         ("monthly_cost_usd", 100.0, "warn")]
    assert "cannot be estimated" in found[2].message


def test_org_ceiling_used_up_by_another_team_still_binds(db, acme):
    other = user(db, "other")
    second = team(db, acme["org"], "vision", other)
    quota(db, "org", acme["org"].id, "daily_jobs", 3)
    quota(db, "team", acme["team"].id, "daily_jobs", 2)
    for n in range(3):
        job(db, other, n, team_id=second.id, org_id=acme["org"].id)
    assert limits(db, acme["user"], ("researcher",), acme["team"], acme["org"])["daily_jobs"] == \
        (2, "block", "team ml-research")
    found = quotas.check_submission(db, acme["user"].id, ("researcher",), acme["team"].id, acme["org"].id, None, None)
    assert [(f.source, f.usage_after, f.limit) for f in found] == [("org acme", 4, 3)]


def test_level_quota_counts_the_users_own_usage(db):
    rae, bob = user(db, "rae"), user(db, "bob")
    quota(db, "level", "researcher", "daily_jobs", 1)
    job(db, bob, 1)
    assert quotas.check_submission(db, rae.id, ("researcher",), None, None, None, None) == []
    job(db, rae, 1)
    [finding] = quotas.check_submission(db, rae.id, ("researcher",), None, None, None, None)
    assert (finding.source, finding.usage_after, finding.limit) == ("level researcher", 2, 1)


def test_my_quotas_shows_limit_source_usage_and_remaining(db, acme):
    jsmith = acme["user"]
    quota(db, "team", acme["team"].id, "concurrent_jobs", 4)
    quota(db, "user", jsmith.id, "monthly_cost_usd", 50)
    db.add(Admission(job_id="a1", user_id=jsmith.id, username="jsmith", team_id=acme["team"].id,
                     org_id=acme["org"].id, state="admitted", enqueued_seq=1))
    job(db, jsmith, 1, status="running", cost_estimate_usd=12.5)
    me = quotas.my_quotas(db, Principal(user_id=jsmith.id, username="jsmith", levels=("researcher",),
                                        permissions=frozenset()))
    assert (me["team"], me["org"]) == ("ml-research", "acme")
    assert [(x["quota_type"], x["limit"], x["source"], x["usage"], x["remaining"]) for x in me["limits"]] == [
        ("concurrent_jobs", 4, "team ml-research", 1, 3), ("monthly_cost_usd", 50.0, "user jsmith", 12.5, 37.5)]


# ---- the scope a job is charged to -----------------------------------------------------------

def test_job_scope_rules(db, acme):
    jsmith, ml, o = acme["user"], acme["team"], acme["org"]
    loner, orgonly = user(db, "loner"), user(db, "orgonly")
    assert orgs.job_scope(db, loner.id, None) == (None, None)
    org_members.add_org_member(db, o, OrgMemberAdd(username="orgonly"), ADMIN, IP)
    db.commit()
    assert orgs.job_scope(db, orgonly.id, None) == (None, o)
    assert orgs.job_scope(db, jsmith.id, None) == (ml, o)
    beta = org(db, "beta")
    beta_ml = team(db, beta, "ml-research", jsmith)  # same slug in another org, joined later
    beta_vision = team(db, beta, "vision", jsmith)
    assert orgs.job_scope(db, jsmith.id, None) == (ml, o)  # the oldest membership
    assert orgs.job_scope(db, jsmith.id, "vision") == (beta_vision, beta)
    assert orgs.job_scope(db, jsmith.id, "beta/ml-research") == (beta_ml, beta)
    assert orgs.job_scope(db, jsmith.id, beta_ml.id) == (beta_ml, beta)
    with pytest.raises(InvalidInput, match="several"):
        orgs.job_scope(db, jsmith.id, "ml-research")
    with pytest.raises(InvalidInput, match="unknown team 'nope'"):
        orgs.job_scope(db, jsmith.id, "nope")
    with pytest.raises(Forbidden, match="not a member of team 'vision'"):
        orgs.job_scope(db, orgonly.id, "vision")


# ---- organizations, teams, members -----------------------------------------------------------

def test_memberships_and_cascading_deletes(db, acme):
    o, ml, jsmith = acme["org"], acme["team"], acme["user"]
    assert db.get(OrgMember, (o.id, jsmith.id)).role == "member"  # joined the org with the team
    assert orgs.org_dict(db, o)["member_count"] == 1 and orgs.team_dict(db, ml)["member_count"] == 1
    with pytest.raises(Conflict, match="'acme'"):
        orgs.create_org(db, OrgCreate(name="Again", slug="acme"), ADMIN, IP)
    with pytest.raises(Conflict, match="ml-research"):
        orgs.create_team(db, o, TeamCreate(name="x", slug="ml-research"), ADMIN, IP)
    with pytest.raises(NotFound, match="'ghost'"):
        org_members.add_team_member(db, o, ml, TeamMemberAdd(username="ghost"), ADMIN, IP)
    other = org(db, "other")
    with pytest.raises(NotFound, match="not found in organization 'other'"):
        orgs.get_team(db, other, ml.id)
    org_members.remove_org_member(db, o, jsmith.id, ADMIN, IP)  # also leaves the org's teams
    db.commit()
    assert db.get(TeamMember, (ml.id, jsmith.id)) is None
    org_members.add_team_member(db, o, ml, TeamMemberAdd(username="jsmith", role="lead"), ADMIN, IP)
    quota(db, "org", o.id, "daily_jobs", 9)
    quota(db, "team", ml.id, "daily_jobs", 5)
    orgs.delete_org(db, o.id, ADMIN, IP)
    db.commit()
    for model in (Organization, Team, OrgMember, TeamMember, Quota):
        rows = list(db.exec(select(model)))
        assert all(getattr(r, "org_id", None) != o.id for r in rows), model
    assert db.exec(select(Team)).all() == [] and db.exec(select(Quota)).all() == []
    actions = [e.action for e in db.exec(select(AuditEntry).order_by(AuditEntry.id))]
    assert actions[-5:] == ["org.member_removed", "team.member_added", "quota.set", "quota.set", "org.deleted"]
