"""SIGKILL of the busy agent: after the heartbeat timeout the job runs again on the idle agent."""

from __future__ import annotations

import signal

import pytest

from tests.e2e.stack import pid_alive

pytestmark = pytest.mark.e2e


@pytest.mark.slow  # a long scenario: make slow (CI runs it after make test)
def test_sigkill_busy_agent_job_completes_on_second_agent(stack_factory):
    stack = stack_factory(heartbeat_timeout=4)
    labels = {"pool": "ha"}
    a_id, a_token = stack.create_worker("agent-a", labels)
    b_id, b_token = stack.create_worker("agent-b", labels)
    stack.start_agent(a_token, name="agent-a", persistent=True)
    stack.start_agent(b_token, name="agent-b", persistent=True)
    stack.put_config("medium", steps=60, step_delay_seconds=0.1)  # ~6 s of training

    job_id = stack.submit(config_name="medium", target="worker", worker_labels=labels)["job_id"]
    job, first_pids = stack.wait_running(job_id, timeout=60)
    busy = job["agent_id"]
    assert busy in (a_id, b_id), job
    other = b_id if busy == a_id else a_id
    assert job["attempt"] == 1, job

    stack.agent_proc(busy).kill(signal.SIGKILL)
    stack.agent_proc(busy).wait_exit(10)
    # the dead agent's training process must not keep running next to attempt 2
    stack.wait_for(lambda: not any(pid_alive(p) for p in first_pids), 5,
                   f"attempt 1's training processes {first_pids} to die with their agent")

    job = stack.wait_job(job_id, "completed", timeout=120)
    assert job["attempt"] == 2, job
    assert job["agent_id"] == other, job
    assert job["outputs"], job
    attempts = {line["attempt"] for line in stack.logs(job_id)}
    assert 2 in attempts, attempts
    stack.wait_worker(busy, "offline", timeout=30)
    assert stack.worker(other)["status"] in ("idle", "busy"), stack.worker(other)
    assert stack.job_count() == 1


def test_quiet_training_process_dies_with_its_killed_agent(stack_factory):
    """A process that never writes (so no SIGPIPE) must still not outlive a SIGKILLed agent."""
    stack = stack_factory(heartbeat_timeout=4)
    labels = {"pool": "quiet"}
    a_id, a_token = stack.create_worker("quiet-a", labels)
    b_id, b_token = stack.create_worker("quiet-b", labels)
    stack.start_agent(a_token, name="quiet-a")
    stack.start_agent(b_token, name="quiet-b")
    quiet = ["/bin/sh", "-c", 'if [ "$SIMPLETUNER_ATTEMPT" = 1 ]; then exec sleep 600; fi; echo done']
    stack.expect(stack.client.put("/api/configs/quiet", json={"command": quiet, "gpu_count": 1}), 200, 201)

    job_id = stack.submit(config_name="quiet", target="worker", worker_labels=labels)["job_id"]
    job, pids = stack.wait_running(job_id, timeout=60)
    killed = job["agent_id"]
    stack.agent_proc(killed).kill(signal.SIGKILL)
    stack.wait_for(lambda: not any(pid_alive(p) for p in pids), 5,
                   f"the silent training process {pids} to die with its agent")
    job = stack.wait_job(job_id, "completed", timeout=120)
    assert job["attempt"] == 2 and job["agent_id"] == (b_id if killed == a_id else a_id), job
