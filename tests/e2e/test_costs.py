"""Cost end to end: estimates, actual cost at completion, provider cost limits and quota actions."""

from __future__ import annotations

import sqlite3

import pytest
import yaml

from tests.e2e.test_users_and_auth import bearer_for, make_user

pytestmark = pytest.mark.e2e


def events(stack, job_id: str) -> list[str]:
    with sqlite3.connect(stack.data_dir / "simpletuner.db") as db:
        return [r[0] for r in db.execute("SELECT event_type FROM jobevent WHERE job_id = ? ORDER BY id", (job_id,))]


@pytest.fixture
def priced(stack_factory):
    stack = stack_factory(start=False)
    stack.enterprise_config.write_text(yaml.safe_dump({"cost": {"hourly_rates_usd": {"test-gpu*": 3600.0}}}))
    stack.start()
    _, token = stack.create_worker("local-1", {"host": "local"}, local=True)
    stack.start_agent(token, name="local-1", gpu_count=2, extra_args=["--hardware-type", "test-gpu"])
    body = stack.tiny_config()
    body.update(hardware_type="test-gpu", estimated_hours=0.001, gpu_count=2)  # 2 GPUs x 3.6 s x $1/s = $7.20
    stack.expect(stack.client.put("/api/configs/priced", json=body), 200, 201)
    return stack


def test_estimate_actual_cost_and_provider_limits(priced):
    stack = priced
    estimate = stack.expect(stack.client.post("/api/quotas/cost-estimate", json={"config_name": "priced"}), 200)
    assert (estimate["cost_estimate_usd"], estimate["gpu_hours"], estimate["hourly_rate_usd"]) == (7.2, 0.002, 3600.0)
    job = stack.submit(config_name="priced", target="local")
    done = stack.wait_job(job["job_id"], "completed", timeout=60)
    assert done["cost_estimate_usd"] == 7.2 and done["gpu_hours"] > 0 and done["cost_usd"] > 0, done
    assert done["cost_usd"] == pytest.approx(done["gpu_hours"] * 3600.0, abs=0.01)

    stack.expect(stack.client.put("/api/cloud/providers/local/config", json={
        "cost_limit_enabled": True, "cost_limit_amount": round(done["cost_usd"] / 0.9, 4), "cost_limit_period": "daily",
        "cost_limit_action": "block"}), 200)
    refused = stack.client.post("/api/queue/submit", json={"config_name": "priced", "target": "local"})
    assert refused.status_code == 403 and "daily cost limit of provider 'local'" in refused.json()["detail"], refused.text
    status = stack.expect(stack.client.get("/api/cloud/metrics/cost-limit-status"), 200)["providers"]
    assert [(p["provider"], p["status"]) for p in status] == [("local", "warning")]
    assert status[0]["spend_usd"] == pytest.approx(done["cost_usd"], abs=0.01)

    stack.expect(stack.client.put("/api/cloud/providers/local/config", json={
        "cost_limit_enabled": True, "cost_limit_amount": 1.0, "cost_limit_action": "warn"}), 200)
    warned = stack.submit(config_name="priced", target="local")
    assert warned["job"]["warnings"] and "cost limit" in warned["job"]["warnings"][0]
    done = stack.wait_job(warned["job_id"], "completed", timeout=60)
    assert done["warnings"] and "cost limit" in done["warnings"][0]  # the evaluation's own finding
    assert "cost.exceeded" in events(stack, warned["job_id"])


def test_quota_actions_at_submission(priced):
    stack = priced
    make_user(stack, "rae", "researcher")
    rae = bearer_for(stack, "rae")
    stack.expect(stack.client.post("/api/quotas", json={"scope": "user", "username": "rae", "quota_type": "daily_jobs",
                                                        "limit": 1, "action": "notify"}), 201)
    first = stack.expect(rae.post("/api/queue/submit", json={"config_name": "priced", "target": "local"}), 201)
    assert first["job"]["warnings"] == []
    stack.wait_job(first["job_id"], ("queued", "running", "completed"))  # evaluated: charged against the quota
    second = stack.expect(rae.post("/api/queue/submit", json={"config_name": "priced", "target": "local"}), 201)
    assert second["job"]["warnings"]  # the API's early check; the evaluation records the event
    stack.wait_for(lambda: events(stack, second["job_id"]), 30, "the quota.exceeded event",
                   until=lambda found: "quota.exceeded" in found)
    stack.expect(stack.client.post("/api/quotas", json={"scope": "user", "username": "rae", "quota_type": "daily_jobs",
                                                        "limit": 1, "action": "block"}), 200)
    jobs_before = stack.job_count()
    refused = rae.post("/api/queue/submit", json={"config_name": "priced", "target": "local"})
    assert refused.status_code == 403 and "daily_jobs" in refused.json()["detail"], refused.text
    assert stack.job_count() == jobs_before
    me = stack.expect(rae.get("/api/quotas/me"), 200)
    assert [(q["quota_type"], q["limit"], q["usage"]) for q in me["limits"]] == [("daily_jobs", 1, 2)]
    for job in (first, second):
        stack.wait_job(job["job_id"], "completed", timeout=60)


@pytest.mark.parametrize("path, body, code, needle", [
    ("/api/cloud/providers/local/config", {"cost_limit_enabled": True}, 422, "cost_limit_amount is required"),
    ("/api/cloud/providers/local/config", {"cost_limit_amount": -5}, 422, "cost_limit_amount"),
    ("/api/cloud/providers/local/config", {"cost_limit_period": "yearly"}, 422, "cost_limit_period"),
    ("/api/cloud/providers/local/config", {"cost_limit_action": "notify"}, 422, "cost_limit_action"),
    ("/api/cloud/providers/Bad%20Name/config", {}, 422, "provider"),
    ("/api/quotas/cost-estimate", {"config_name": "nope"}, 422, "unknown config_name 'nope'"),
    ("/api/quotas/cost-estimate", {"config_name": "tiny-numpy", "gpu_count": 0}, 422, "gpu_count"),
])
def test_bad_cost_input(shared_stack, path, body, code, needle):
    method = shared_stack.client.put if path.endswith("/config") else shared_stack.client.post
    answer = method(path, json=body)
    assert answer.status_code == code and needle in answer.json()["detail"], answer.text
    assert shared_stack.expect(shared_stack.client.get("/api/cloud/metrics/cost-limit-status"), 200)["providers"] == []
