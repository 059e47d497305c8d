"""Fail closed: an unknown cost, an unreadable rule, a config that names no hardware where hardware is
restricted all get the stricter answer with the reason named; daily quotas hold under a burst."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.test_users_and_auth import bearer_for, make_user

pytestmark = pytest.mark.e2e


def _config(stack, name: str, **fields) -> None:
    body = {"command": ["true"], "gpu_count": 1, **fields}
    stack.expect(stack.client.put(f"/api/configs/{name}", json=body), 200, 201)


def test_what_cannot_be_checked_is_refused_or_gated(stack):
    make_user(stack, "rae", "researcher")
    rae = bearer_for(stack, "rae")
    _config(stack, "no-hours", hardware_type="cpu")  # no estimated_hours: the cost cannot be estimated
    _config(stack, "odd-gpu", hardware_type="quantum-9000", estimated_hours=1.0)  # no known rate
    _config(stack, "anywhere", estimated_hours=0.01)  # names no hardware
    _config(stack, "known", hardware_type="cpu", estimated_hours=0.01)

    def submit(config: str):
        return rae.post("/api/queue/submit", json={"config_name": config, "target": "local"})

    # a blocking cost quota refuses what it cannot price, and says why
    quota = stack.expect(stack.client.post("/api/quotas", json={"scope": "user", "username": "rae",
                                                                "quota_type": "monthly_cost_usd", "limit": 1000}), 201)
    for config in ("no-hours", "odd-gpu"):
        refused = submit(config)
        assert refused.status_code == 403 and "cannot be estimated" in refused.json()["detail"], refused.text
    assert submit("known").status_code == 201
    stack.expect(stack.client.delete(f"/api/quotas/{quota['id']}"), 200)

    # ... and so does a blocking provider cost limit
    stack.expect(stack.client.put("/api/cloud/providers/local/config", json={
        "cost_limit_enabled": True, "cost_limit_amount": 1000, "cost_limit_action": "block"}), 200)
    refused = submit("no-hours")
    assert refused.status_code == 403 and "cannot be estimated" in refused.json()["detail"], refused.text
    stack.expect(stack.client.put("/api/cloud/providers/local/config", json={"cost_limit_enabled": False}), 200)

    # an unknown cost exceeds every cost_exceeds threshold
    stack.expect(stack.client.post("/api/approvals/rules", json={
        "name": "pricey", "condition": "cost_exceeds", "threshold": 1000000, "required_approver_level": "lead"}), 201)
    gated = stack.expect(submit("no-hours"), 201)["job_id"]
    stack.wait_job(gated, "pending_approval", timeout=30)
    reason = stack.expect(stack.client.get(f"/api/approvals/requests/job/{gated}"), 200)["reason"]
    assert "cannot be estimated" in reason and "pricey" in reason
    assert stack.cancel(gated).status_code == 202

    # a stored rule that cannot be read applies, naming what is wrong with it
    broken = stack.expect(stack.client.post("/api/approvals/rules", json={
        "name": "broken", "condition": "config_pattern", "threshold": "nothing-matches-*", "priority": 99}), 201)
    with sqlite3.connect(stack.data_dir / "simpletuner.db") as db:
        db.execute("UPDATE approvalrule SET condition = 'moon_phase' WHERE id = ?", (broken["id"],))
    gated = stack.expect(submit("known"), 201)["job_id"]
    stack.wait_job(gated, "pending_approval", timeout=30)
    reason = stack.expect(stack.client.get(f"/api/approvals/requests/job/{gated}"), 200)["reason"]
    assert "unknown condition 'moon_phase'" in reason and "broken" in reason
    assert stack.cancel(gated).status_code == 202

    # where the level's rules restrict hardware, a config that names none is refused
    assert submit("anywhere").status_code != 403
    stack.expect(stack.client.post("/api/users/resource-rules", json={
        "level": "researcher", "resource_type": "hardware", "pattern": "gpu-a100*", "action": "deny"}), 201)
    refused = submit("anywhere")
    assert refused.status_code == 403 and "names no hardware_type" in refused.json()["detail"], refused.text
    assert submit("known").status_code == 201


def test_a_burst_of_submissions_cannot_overshoot_a_daily_quota(stack):
    """Twelve concurrent submissions against a daily_jobs quota of 3: exactly 3 are accepted, whether
    the rest are refused at once (403) or by their evaluation, which charges each job atomically."""
    make_user(stack, "rae", "researcher")
    stack.expect(stack.client.post("/api/quotas", json={"scope": "user", "username": "rae",
                                                        "quota_type": "daily_jobs", "limit": 3}), 201)
    _config(stack, "known", hardware_type="cpu", estimated_hours=0.01)

    def submit(_: int):
        with bearer_for(stack, "rae") as client:
            return client.post("/api/queue/submit", json={"config_name": "known", "target": "worker",
                                                          "worker_labels": {"pool": "none"}})

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(submit, range(12)))
    created = [a.json()["job_id"] for a in answers if a.status_code == 201]
    assert all(a.status_code in (201, 403) for a in answers), [a.text for a in answers]
    assert len(created) >= 3
    settled = {job_id: stack.wait_job(job_id, ("queued", "failed"), timeout=60) for job_id in created}
    accepted = [j for j in settled.values() if j["status"] == "queued"]
    refused = [j for j in settled.values() if j["status"] == "failed"]
    assert len(accepted) == 3, settled
    assert all("daily_jobs quota" in j["error"] for j in refused), refused
