"""Admission passes against a real SQLite file: limits, priority, round-robin across users, FIFO."""

from __future__ import annotations


import pytest
from sqlmodel import Session, select

from activities.db.models_orgs import Quota
from activities.db.models_queue import Admission
from activities.capacity import admission


def add(db: Session, job: str, user: str, priority: int = 20, team: str | None = None, level: str = "researcher"):
    admission.enqueue(db, Admission(job_id=job, user_id=user, username=user, priority=priority, team_id=team,
                                    team_slug=team, level=level))


def admitted_now(db: Session) -> list[str]:
    return [d.admission.job_id for d in admission.admit_pass(db) if d.admit]


def test_round_robin_across_users_fifo_within_each(db):
    admission.set_limits(db, 1, None, "t")
    for job, user in [("a1", "a"), ("a2", "a"), ("a3", "a"), ("a4", "a"), ("b1", "b"), ("b2", "b"), ("c1", "c")]:
        add(db, job, user)
    order = []
    for _ in range(7):
        got = admitted_now(db)
        assert len(got) == 1
        order += got
        admission.release(db, got[0])
    assert order == ["a1", "b1", "c1", "a2", "b2", "a3", "a4"]


def test_priority_first_then_users_take_turns(db):
    admission.set_limits(db, 2, None, "t")
    add(db, "r1", "rae")
    add(db, "r2", "rae")
    assert admitted_now(db) == ["r1", "r2"]
    add(db, "r3", "rae")
    add(db, "v1", "vic", priority=10, level="viewer")
    add(db, "l1", "lea", priority=30, level="lead")
    add(db, "x1", "xan")
    admission.release(db, "r1")
    assert admitted_now(db) == ["l1"]  # the lead first
    admission.release(db, "l1")
    assert admitted_now(db) == ["r3"]  # rae's turn came round again: equal tags, FIFO
    add(db, "r4", "rae")
    add(db, "r5", "rae")
    add(db, "y1", "yul")  # queued after rae's burst, served before its rest
    admission.release(db, "r3")
    assert admitted_now(db) == ["x1"]
    admission.release(db, "x1")
    assert admitted_now(db) == ["r4"]
    admission.release(db, "r4")
    assert admitted_now(db) == ["y1"]
    admission.release(db, "y1")
    assert admitted_now(db) == ["r5"]
    admission.release(db, "r5")
    assert admitted_now(db) == ["v1"]


def test_user_limit_skips_without_blocking_others(db):
    admission.set_limits(db, 5, 2, "t")
    for i in range(4):
        add(db, f"a{i}", "a")
    add(db, "b0", "b")
    assert sorted(admitted_now(db)) == ["a0", "a1", "b0"]
    reasons = {d.admission.job_id: d.reason for d in admission.plan(db)}
    assert "user_max_concurrent 2" in reasons["a2"]


def test_team_and_level_quotas_hold_jobs(db):
    db.add(Quota(id="q1", scope="team", scope_id="vision", quota_type="concurrent_jobs", limit_value=1,
                 action="block"))
    db.add(Quota(id="q2", scope="level", scope_id="viewer", quota_type="concurrent_jobs", limit_value=1,
                 action="block"))
    db.add(Quota(id="q3", scope="team", scope_id="nlp", quota_type="concurrent_jobs", limit_value=1, action="warn"))
    add(db, "t1", "a", team="vision")
    add(db, "t2", "b", team="vision")
    add(db, "v1", "v", priority=10, level="viewer")
    add(db, "v2", "v", priority=10, level="viewer")
    add(db, "n1", "c", team="nlp")
    add(db, "n2", "d", team="nlp")
    assert sorted(admitted_now(db)) == ["n1", "n2", "t1", "v1"]  # a warn quota does not hold jobs
    reasons = {d.admission.job_id: d.reason for d in admission.plan(db)}
    assert "team vision" in reasons["t2"] and "viewer level" in reasons["v2"]
    admission.release(db, "t1")
    assert admitted_now(db) == ["t2"]


def test_raising_a_limit_admits_at_once_and_release_is_idempotent(db):
    admission.set_limits(db, 1, None, "t")
    for i in range(3):
        add(db, f"j{i}", f"u{i}")
    assert admitted_now(db) == ["j0"]
    admission.set_limits(db, 3, None, "t")
    assert admitted_now(db) == ["j1", "j2"]
    assert admission.release(db, "j0") is True and admission.release(db, "j0") is False
    rows = {a.job_id: a for a in db.exec(select(Admission))}
    seqs = [rows["j0"].enqueued_seq, rows["j0"].admit_seq, rows["j1"].admit_seq, rows["j0"].release_seq]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4


def test_priority_override(db):
    admission.set_limits(db, 1, None, "t")
    add(db, "busy", "z")
    assert admitted_now(db) == ["busy"]
    add(db, "first", "a")
    add(db, "second", "b")
    admission.set_priority(db, "second", 500)
    admission.release(db, "busy")
    assert admitted_now(db) == ["second"]
    with pytest.raises(Exception, match="already admitted"):
        admission.set_priority(db, "second", 1)


def test_past_a_warn_or_notify_limit_the_job_is_admitted_with_a_warning(db):
    from activities.db.models import Job, JobEvent

    db.add(Quota(id="qw", scope="team", scope_id="nlp", quota_type="concurrent_jobs", limit_value=1, action="warn"))
    db.add(Quota(id="qn", scope="team", scope_id="cv", quota_type="concurrent_jobs", limit_value=1, action="notify"))
    for job in ("n1", "n2", "c1", "c2"):
        db.add(Job(id=job, owner_id="u", owner_name="u", config_name="c", target="auto", request_hash=""))
    for job, user, team in (("n1", "a", "nlp"), ("n2", "b", "nlp"), ("c1", "c", "cv"), ("c2", "d", "cv")):
        add(db, job, user, team=team)
    assert sorted(admitted_now(db)) == ["c1", "c2", "n1", "n2"]
    db.commit()
    assert db.get(Job, "n1").warnings == [] and db.get(Job, "c1").warnings == []
    assert "concurrent_jobs quota of team nlp (1) is exceeded" in db.get(Job, "n2").warnings[0]
    assert "concurrent_jobs quota of team cv (1) is exceeded" in db.get(Job, "c2").warnings[0]
    events = {(e.job_id, e.event_type) for e in db.exec(select(JobEvent))}
    assert ("n2", "quota.warning") in events and ("c2", "quota.exceeded") in events
    assert not {e for e in events if e[0] in ("n1", "c1")}


def test_job_bypass_queue_skips_the_line_but_never_a_limit(db):
    admission.set_limits(db, 1, 1, "t")
    add(db, "busy", "z")
    assert admitted_now(db) == ["busy"]
    add(db, "l1", "lea", priority=30, level="lead")
    admission.enqueue(db, Admission(job_id="b1", user_id="boss", username="boss", priority=10, level="viewer",
                                    bypass_queue=True))
    admission.enqueue(db, Admission(job_id="b2", user_id="boss", username="boss", priority=10, level="viewer",
                                    bypass_queue=True))
    line = [d.admission.job_id for d in admission.plan(db)]
    assert line == ["b1", "b2", "l1"]  # ahead of a higher priority...
    assert admitted_now(db) == []  # ...but the global limit still holds everyone
    admission.release(db, "busy")
    assert admitted_now(db) == ["b1"]
    admission.set_limits(db, 5, 1, "t")
    assert admitted_now(db) == ["l1"]  # b2 waits: its user's limit (1) is reached even though it bypasses
