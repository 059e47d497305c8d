"""SIGKILL of the worker host and the API mid-job, then restart: the job still completes, once."""

from __future__ import annotations

import signal

import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.slow  # a long scenario: make slow (CI runs it after make test)
def test_job_survives_worker_host_and_api_crash(stack):
    worker_id, token = stack.create_worker("agent-1", {"pool": "restart"})
    agent = stack.start_agent(token, name="agent-1")
    stack.put_config("medium", steps=80, step_delay_seconds=0.1)  # ~8 s of training

    job_id = stack.submit(config_name="medium", target="worker", worker_labels={"pool": "restart"})["job_id"]
    stack.wait_running(job_id, timeout=60)

    for proc in (stack.worker_host, stack.api):
        proc.kill(signal.SIGKILL)
    for proc in (stack.worker_host, stack.api):
        proc.wait_exit(10)
    assert stack.training_pids(job_id), "training keeps running while the control plane is down"
    assert agent.alive, "the agent must survive the API going away\n" + agent.log_tail()

    stack.start_api()
    stack.start_worker_host()

    job = stack.wait_job(job_id, "completed", timeout=120)
    assert job["agent_id"] == worker_id, job
    assert job["outputs"], job
    assert stack.logs(job_id), "logs were recorded"
    listed = stack.jobs()
    assert listed["total"] == 1, listed
    assert [j["job_id"] for j in listed["jobs"]] == [job_id], listed
    stack.wait_for(lambda: stack.workflow_status(job_id), 30, f"workflow {job_id} to complete",
                   until=lambda status: status == "COMPLETED")
    assert agent.alive, agent.log_tail()
