"""Cancel reaches the training process within seconds; cancelling a queued job works too."""

from __future__ import annotations

import time

import pytest

from tests.e2e.stack import pid_alive

pytestmark = pytest.mark.e2e


def test_cancel_running_job_kills_training_process_within_3s(stack):
    worker_id, token = stack.create_worker("agent-1", {"pool": "cancel"})
    stack.start_agent(token, name="agent-1")
    stack.put_config("long", steps=100000, step_delay_seconds=0.05)
    job_id = stack.submit(config_name="long", target="worker", worker_labels={"pool": "cancel"})["job_id"]
    job, pids = stack.wait_running(job_id, timeout=60)
    assert job["agent_id"] == worker_id, job

    t0 = time.monotonic()
    response = stack.cancel(job_id)
    assert response.status_code == 202, (response.status_code, response.text)
    data = response.json()
    assert data["job_id"] == job_id and data["cancel_requested"] is True, data

    remaining = max(0.1, 3.0 - (time.monotonic() - t0))
    stack.wait_for(lambda: stack.training_pids(job_id), remaining,
                   f"the training process(es) {pids} of job {job_id} to be gone within 3 s of the cancel call",
                   until=lambda found: not found, interval=0.05)
    elapsed = time.monotonic() - t0
    print(f"training process of {job_id} gone {elapsed:.2f}s after the cancel call")
    assert elapsed <= 3.0, f"training process outlived the cancel by {elapsed:.2f}s"
    assert not any(pid_alive(pid) for pid in pids), pids

    job = stack.wait_job(job_id, "cancelled", timeout=30)
    assert job["finished_at"], job
    again = stack.cancel(job_id)
    assert again.status_code == 409, (again.status_code, again.text)
    assert stack.job(job_id)["status"] == "cancelled"
    # The agent is free again (not stuck busy with the cancelled job).
    worker = stack.wait_worker(worker_id, "idle", timeout=30)
    assert not worker.get("current_job_id"), worker


def test_cancel_queued_job(stack):
    stack.put_config("quick", steps=5, step_delay_seconds=0.01)
    job_id = stack.submit(config_name="quick", target="worker", worker_labels={"pool": "nobody"})["job_id"]
    job = stack.wait_job(job_id, "queued", timeout=30)
    assert job["queue_reason"], job
    response = stack.cancel(job_id)
    assert response.status_code == 202, (response.status_code, response.text)
    job = stack.wait_job(job_id, "cancelled", timeout=30)
    assert job["agent_id"] is None and job["attempt"] in (0, None), job
    stack.wait_for(lambda: stack.workflow_status(job_id), 30, f"workflow {job_id} to close",
                   until=lambda status: status != "RUNNING")
