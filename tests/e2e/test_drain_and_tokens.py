"""Drain is admin state that heartbeats and re-registration never undo; token rotation is immediate."""

from __future__ import annotations

import pytest

from tests.e2e.stack import detail_text

pytestmark = pytest.mark.e2e


def test_drain_survives_heartbeats_and_agent_restart(stack):
    labels = {"pool": "drain"}
    worker_id, token = stack.create_worker("agent-d", labels)
    agent = stack.start_agent(token, name="agent-d")
    stack.wait_worker(worker_id, "idle")

    stack.drain(worker_id)
    worker = stack.wait_worker(worker_id, "draining", timeout=10)
    assert worker["draining"] is True, worker

    worker = stack.wait_heartbeats(worker_id, count=2)
    assert worker["status"] == "draining" and worker["draining"] is True, f"a heartbeat undid the drain: {worker}"

    agent.terminate_and_wait(20)
    stack.start_agent(token, name="agent-d")  # waits for the re-registration
    worker = stack.wait_heartbeats(worker_id, count=1)
    assert worker["status"] == "draining" and worker["draining"] is True, f"re-registration undid the drain: {worker}"

    stack.put_config("quick", steps=5, step_delay_seconds=0.01)
    job_id = stack.submit(config_name="quick", target="worker", worker_labels=labels)["job_id"]
    job = stack.wait_job(job_id, "queued", timeout=30)
    assert job["queue_reason"], job
    stack.assert_stays(lambda: stack.job(job_id),
                       lambda j: j["status"] == "queued" and not j["agent_id"] and j["queue_reason"],
                       duration=3 * stack.placement_recheck + 1,
                       what="the job to stay queued while its only matching agent drains")
    assert stack.training_pids(job_id) == []
    assert stack.worker(worker_id)["status"] == "draining"


def test_token_rotation_invalidates_old_token_at_once(stack):
    labels = {"pool": "tokens"}
    worker_id, old = stack.create_worker("agent-t", labels)
    agent = stack.start_agent(token=old, name="agent-t")
    assert stack.worker_heartbeat(old).status_code == 200

    new = stack.rotate_token(worker_id)
    assert new and new != old
    refused = stack.worker_heartbeat(old)
    assert refused.status_code == 401, (refused.status_code, refused.text)
    assert detail_text(refused), refused.text
    registered = stack.anon.post("/api/workers/register", headers={"X-Worker-Token": old},
                                 json={"name": "agent-t", "gpu_count": 1})
    assert registered.status_code == 401, (registered.status_code, registered.text)

    # The running agent holds the old token: it must notice the 401 and stop.
    agent.wait_exit(timeout=3 * stack.heartbeat_timeout + 15)
    assert "401" in agent.log_text() or "token" in agent.log_text().lower(), agent.log_tail()

    accepted = stack.worker_heartbeat(new)
    assert accepted.status_code == 200, (accepted.status_code, accepted.text)

    # An agent with the new token registers and runs a job end to end.
    stack.start_agent(new, name="agent-t")
    stack.put_config("quick", steps=5, step_delay_seconds=0.01)
    job_id = stack.submit(config_name="quick", target="worker", worker_labels=labels)["job_id"]
    job = stack.wait_job(job_id, "completed", timeout=90)
    assert job["agent_id"] == worker_id, job
