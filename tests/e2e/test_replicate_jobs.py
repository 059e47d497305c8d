"""Jobs on Replicate end to end, against the stand-in (``tests/servers/replicate_server.py``): the
external-orchestration submit route, webhook-driven and polling-only jobs, cancel reaching the provider,
an outage opening the circuit and the job going on once it closes, refused webhooks, actual cost."""

from __future__ import annotations

import time

import pytest
import yaml

from tests.e2e.replicate_stack import cloud_stack
from tests.servers.replicate_server import ReplicateServer

pytestmark = pytest.mark.e2e

VERSION = "acme/trainer:" + "a" * 64


@pytest.fixture
def replicate():
    with ReplicateServer() as server:
        yield server


def _stack(stack_factory, replicate, **env):
    return cloud_stack(stack_factory, replicate, **env)


def _configure(stack, **fields):
    body = {"version": VERSION, "destination": "acme/lora-out", **fields}
    return stack.expect(stack.client.put("/api/cloud/providers/replicate/config", json=body), 200)


def _training_of(stack, replicate, job_id: str, timeout: float = 30.0) -> str:
    job = stack.wait_for(lambda: (stack.job(job_id).get("provider_training") or {}).get("training_id"), timeout,
                         f"job {job_id} to create its training")
    replicate.wait_for(lambda: any(t["id"] == job for t in replicate.trainings()), 10)
    return job


def _audit(stack, action: str) -> list[dict]:
    return stack.sql("SELECT actor, target_id, details FROM auditentry WHERE action = :a", a=action)


def test_webhook_driven_job_through_the_airflow_route(stack_factory, replicate):
    stack = _stack(stack_factory, replicate)
    _configure(stack, webhook_url=f"{stack.api_url}/api/webhooks/replicate")
    # the enterprise guide's external-orchestration example: POST /api/cloud/{provider}/submit -> job_id
    answer = stack.expect(stack.client.post("/api/cloud/replicate/submit", json={"config_name": "cloud-lora"}), 201)
    job_id = answer["job_id"]
    training_id = _training_of(stack, replicate, job_id)
    created = next(r for r in replicate.requests if r["method"] == "POST" and "/trainings" in r["path"])
    assert created["path"] == f"/v1/models/acme/trainer/versions/{'a' * 64}/trainings", created
    sent = created["body"]
    assert sent["destination"] == "acme/lora-out" and sent["webhook"].endswith("/api/webhooks/replicate")
    assert created["authorization"] == f"Bearer {replicate.token}"
    stack.wait_job(job_id, "queued")

    replicate.advance(training_id, "processing", logs="step 1/10 loss=0.9\nstep 2/10 loss=0.7\n")
    stack.wait_job(job_id, "running", timeout=20)
    replicate.advance(training_id, "succeeded", logs="step 10/10 loss=0.1\n", predict_time=1800.0)
    done = stack.wait_job(job_id, "completed", timeout=20)
    training = done["provider_training"]
    assert training["status"] == "succeeded" and training["credential_source"] == "global", training
    assert training["output"]["weights"].startswith(replicate.url) and training["predict_time"] == 1800.0
    assert done["cost_usd"] == pytest.approx(3.6) and done["gpu_hours"] == pytest.approx(0.5), done
    lines = [entry["line"] for entry in stack.logs(job_id)]
    assert lines == ["step 1/10 loss=0.9", "step 2/10 loss=0.7", "step 10/10 loss=0.1"], lines
    assert not [r for r in replicate.requests if r["method"] == "GET" and r["path"].startswith("/v1/trainings/")], \
        "webhooks were delivered: no poll is needed within the safety interval"

    # the official example's loop: GET the job until it is terminal
    status = stack.client.get(f"/api/cloud/jobs/{job_id}").json()["status"]
    assert status in ("completed", "failed", "cancelled")


def test_polling_only_job_and_cancel_reaching_the_provider(stack_factory, replicate):
    stack = _stack(stack_factory, replicate, SIMPLETUNER_JOB_POLL_INTERVAL="1")
    replicate.set_webhooks(False)
    _configure(stack)  # no webhook_url: polling is on by itself
    live = stack.client.get("/api/cloud/health", params={"include_providers": "true"}).json()
    component = next(c for c in live["components"] if c["name"] == "replicate")
    assert component["status"] == "healthy" and component["latency_ms"] is not None, component
    assert any(r["path"] == "/v1/account" for r in replicate.requests), "the live check calls the provider"
    providers = stack.expect(stack.client.get("/api/cloud/providers"), 200)["providers"]
    assert providers == [{**providers[0], "name": "replicate", "configured": True, "webhooks": False,
                          "polling_interval_seconds": 1.0}]
    job_id = stack.expect(stack.client.post("/api/cloud/jobs/submit", json={
        "config_name": "cloud-lora", "provider": "replicate"}), 201)["job_id"]
    training_id = _training_of(stack, replicate, job_id)
    replicate.advance(training_id, "processing", logs="warming up\n")
    stack.wait_job(job_id, "running", timeout=20)
    assert stack.job(job_id)["provider_training"]["status"] == "processing"

    stack.expect(stack.cancel(job_id), 202)
    stack.wait_job(job_id, "cancelled", timeout=20)
    cancels = [r for r in replicate.requests if r["method"] == "POST" and r["path"].endswith("/cancel")]
    assert [r["path"] for r in cancels] == [f"/v1/trainings/{training_id}/cancel"], cancels
    assert replicate.training(training_id)["status"] == "canceled"


def test_an_outage_opens_the_circuit_and_the_job_goes_on_when_it_closes(stack_factory, replicate):
    stack = _stack(stack_factory, replicate, SIMPLETUNER_JOB_POLL_INTERVAL="1")
    _configure(stack, webhook_url=f"{stack.api_url}/api/webhooks/replicate")
    replicate.set_outage(True, status=503)
    job_id = stack.expect(stack.client.post("/api/cloud/replicate/submit", json={"config_name": "cloud-lora"}),
                          201)["job_id"]
    waiting = stack.wait_for(lambda: (lambda j: j if "circuit open" in (j.get("queue_reason") or "") else None)(
        stack.job(job_id)), 30, "the job to wait for the open circuit")
    assert waiting["status"] == "queued", waiting
    health = stack.client.get("/api/cloud/health").json()
    replicate_health = [c for c in health["components"] if c["name"] == "replicate"]
    assert replicate_health and replicate_health[0]["status"] == "degraded" and health["status"] == "degraded", health
    events = {r["event_type"] for r in stack.sql("SELECT event_type FROM jobevent WHERE job_id IS NULL")}
    assert {"system.provider_error", "system.provider_degraded"} <= events, events

    replicate.set_outage(False)
    training_id = _training_of(stack, replicate, job_id, timeout=30)
    replicate.advance(training_id, "succeeded", predict_time=60.0)
    stack.wait_job(job_id, "completed", timeout=20)
    assert stack.expect(stack.client.get("/api/cloud/providers"), 200)["providers"][0]["circuit"]["state"] == "closed"


def test_forged_stale_replayed_and_foreign_webhooks_are_refused(stack_factory, replicate):
    stack = _stack(stack_factory, replicate)
    _configure(stack, webhook_url=f"{stack.api_url}/api/webhooks/replicate")
    job_id = stack.expect(stack.client.post("/api/cloud/replicate/submit", json={"config_name": "cloud-lora"}),
                          201)["job_id"]
    training_id = _training_of(stack, replicate, job_id)
    replicate.wait_deliveries_settled()

    def last_status() -> int | None:
        settled = replicate.wait_deliveries_settled()
        return settled[-1]["attempts"][-1]["status"]

    replicate.forge(training_id, "bad_signature")
    assert last_status() == 401
    replicate.forge(training_id, "old_timestamp", seconds=600)
    assert last_status() == 401
    assert len(_audit(stack, "webhook.rejected")) >= 2

    replicate.advance(training_id, "processing", logs="one\n")
    stack.wait_job(job_id, "running", timeout=20)
    replicate.redeliver(training_id)  # the same webhook-id again: acknowledged, not applied twice
    settled = replicate.wait_deliveries_settled()
    assert settled[-1]["attempts"][-1]["status"] == 200
    assert [entry["line"] for entry in stack.logs(job_id)] == ["one"]
    receipts = stack.sql("SELECT webhook_id FROM webhookreceipt WHERE training_id = :t", t=training_id)
    assert len({r["webhook_id"] for r in receipts}) == len(receipts)

    unknown = stack.anon.post("/api/webhooks/replicate", json={"id": "nosuchtraining", "status": "succeeded"})
    assert unknown.status_code == 404, unknown.text
    assert _audit(stack, "webhook.unknown_training")

    _configure(stack, webhook_allowed_ips=["203.0.113.0/24"])
    replicate.advance(training_id, "succeeded", predict_time=10.0)
    assert last_status() == 403
    refused = [a for a in _audit(stack, "webhook.rejected") if "127.0.0.1" in str(a["details"])]
    assert refused, _audit(stack, "webhook.rejected")
    assert stack.job(job_id)["status"] == "running"  # a refused delivery changes nothing


# The enterprise guide's external-orchestration (Airflow) example, as the guide prints it; only the
# host is this stack's and ``TOKEN`` an API key. Its status loop sends no credentials: the guide runs it
# from inside the network, where ``network.bypass_auth_for_internal`` lets such calls read jobs.
AIRFLOW_EXAMPLE = '''
def submit_and_wait(job_config, provider="replicate", **context):
    resp = requests.post(
        f"http://localhost:8080/api/cloud/{provider}/submit",
        json=job_config,
        headers={"Authorization": f"Bearer {TOKEN}"}
    )
    job_id = resp.json()["job_id"]

    while True:
        status = requests.get(f"http://localhost:8080/api/cloud/jobs/{job_id}")
        state = status.json()["status"]
        if state in ("completed", "failed", "cancelled"):
            return status.json()
        time.sleep(30)
'''


class _QuickTime:
    """The example's ``time``: its 30-second pause between looks shortened for the test."""
    @staticmethod
    def sleep(_seconds: float) -> None:
        time.sleep(0.2)


def test_the_airflow_example_as_written(stack_factory, replicate):
    import requests
    stack = stack_factory(start=False, extra_env={
        "SIMPLETUNER_REPLICATE_API_TOKEN": replicate.token, "REPLICATE_BASE_URL": replicate.url})
    stack.enterprise_config.write_text(yaml.safe_dump({"network": {
        "bypass_auth_for_internal": True, "internal_networks": ["127.0.0.1/32", "::1/128"], "bypass_level": "lead"}}))
    stack.start()
    stack.expect(stack.client.put("/api/configs/cloud-lora", json=stack.tiny_config()), 200, 201)
    _configure(stack, webhook_url=f"{stack.api_url}/api/webhooks/replicate")
    replicate.set_auto(True, starting_seconds=0.2, processing_seconds=0.5)
    source = AIRFLOW_EXAMPLE.replace("http://localhost:8080", stack.api_url)
    namespace = {"requests": requests, "time": _QuickTime, "TOKEN": stack.admin_token}
    exec(compile(source, "airflow_example.py", "exec"), namespace)
    finished = namespace["submit_and_wait"]({"config_name": "cloud-lora"})
    assert finished["status"] == "completed", finished
    assert finished["provider_training"]["status"] == "succeeded"


def test_approval_quotas_and_the_users_own_credential_apply_to_provider_jobs(stack_factory, replicate):
    from tests.e2e.test_users_and_auth import bearer_for, make_user
    stack = _stack(stack_factory, replicate)
    _configure(stack, webhook_url=f"{stack.api_url}/api/webhooks/replicate")
    make_user(stack, "rita", "researcher")
    rita = bearer_for(stack, "rita")
    own = "r8_rita_" + "x" * 24
    replicate.set_tokens([replicate.token, own])
    stack.expect(rita.post("/api/users/me/credentials", json={
        "provider": "replicate", "credential_name": "api_token", "value": own}), 200, 201)
    stack.expect(stack.client.post("/api/approvals/rules", json={
        "name": "replicate-needs-a-lead", "condition": "provider", "threshold": "replicate",
        "required_approver_level": "lead"}), 201)
    job_id = stack.expect(rita.post("/api/cloud/replicate/submit", json={"config_name": "cloud-lora"}), 201)["job_id"]
    stack.wait_job(job_id, "pending_approval", timeout=20)
    assert not replicate.trainings(), "nothing runs on the provider before the approval"
    request = stack.wait_for(lambda: next((r for r in stack.client.get("/api/approvals/requests").json()["requests"]
                                           if r["job_id"] == job_id), None), 10, "the approval request")
    stack.expect(stack.client.post(f"/api/approvals/requests/{request['id']}/approve", json={}), 200)
    training_id = _training_of(stack, replicate, job_id)
    created = next(r for r in replicate.requests if r["method"] == "POST" and r["path"].endswith("/trainings"))
    assert created["authorization"] == f"Bearer {own}", "the submitter's own credential creates the training"
    assert stack.job(job_id)["provider_training"]["credential_source"] == "user"
    replicate.advance(training_id, "succeeded", predict_time=5.0)  # its webhook verifies with that account's secret
    stack.wait_job(job_id, "completed", timeout=20)

    stack.expect(stack.client.post("/api/quotas", json={"scope": "user", "username": "rita", "quota_type": "daily_jobs",
                                                        "limit": 1, "action": "block"}), 201)
    refused = rita.post("/api/cloud/replicate/submit", json={"config_name": "cloud-lora"})
    assert refused.status_code == 403 and "daily" in refused.text, refused.text
    unconfigured = rita.post("/api/cloud/jobs/submit", json={"config_name": "cloud-lora", "provider": "nosuch"})
    assert unconfigured.status_code == 422 and "unknown target" in unconfigured.text, unconfigured.text
