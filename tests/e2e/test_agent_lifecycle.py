"""Agent lifecycle: ephemeral exit, labels across re-registration, SIGTERM hand-back,
reconnect after Temporal restarts."""

from __future__ import annotations

import signal

import pytest

pytestmark = pytest.mark.e2e


def test_ephemeral_agent_exits_after_one_job(stack):
    worker_id, token = stack.create_worker("eph", {"pool": "eph"})
    agent = stack.start_agent(token, name="eph", persistent=False)
    stack.put_config("quick", steps=5, step_delay_seconds=0.01)
    job_id = stack.submit(config_name="quick", target="worker", worker_labels={"pool": "eph"})["job_id"]
    assert stack.wait_job(job_id, "completed", timeout=60)["agent_id"] == worker_id
    assert agent.wait_exit(30) == 0, agent.log_tail()
    assert stack.worker(worker_id)["status"] == "offline", "a disconnected agent shows offline at once"


def test_labels_survive_reregistration(stack):
    labels = {"gpu_type": "a100-80g", "team": "nlp"}
    worker_id, token = stack.create_worker("lab", labels)
    agent = stack.start_agent(token, name="lab", gpu_count=2)
    before = stack.worker(worker_id)
    agent.terminate_and_wait(20)
    stack.start_agent(token, name="something-else", gpu_count=2)
    after = stack.worker(worker_id)
    assert after["labels"] == labels and after["task_queue"] == before["task_queue"], (before, after)
    assert after["name"] == "lab", "the admin-given name stays"


def test_sigterm_hands_a_long_job_to_another_agent(stack):
    labels = {"pool": "term"}
    a_id, a_token = stack.create_worker("term-a", labels)
    b_id, b_token = stack.create_worker("term-b", labels)
    procs = {a_id: stack.start_agent(a_token, name="term-a", extra_args=["--shutdown-grace", "1"]),
             b_id: stack.start_agent(b_token, name="term-b", extra_args=["--shutdown-grace", "1"])}
    stack.put_config("long", steps=100000, step_delay_seconds=0.05)
    job_id = stack.submit(config_name="long", target="worker", worker_labels=labels)["job_id"]
    job, pids = stack.wait_running(job_id)
    first = job["agent_id"]
    procs[first].kill(signal.SIGTERM)
    assert procs[first].wait_exit(30) == 0, procs[first].log_tail()
    other = b_id if first == a_id else a_id
    stack.wait_for(lambda: stack.job(job_id), 60, f"job {job_id} to run again on {other}",
                   until=lambda j: j["status"] == "running" and j["agent_id"] == other)
    job = stack.job(job_id)
    assert job["attempt"] == 2, job
    assert stack.worker(first)["status"] == "offline"
    stack.expect(stack.cancel(job_id), 202)
    assert stack.wait_job(job_id, "cancelled", timeout=30)["attempt"] == 2


@pytest.mark.slow  # a long scenario: make slow (CI runs it after make test)
def test_job_completes_across_a_temporal_restart(own_temporal, stack_factory):
    stack = stack_factory(temporal_server=own_temporal)
    worker_id, token = stack.create_worker("tr", {"pool": "tr"})
    agent = stack.start_agent(token, name="tr")
    stack.put_config("medium", steps=60, step_delay_seconds=0.1)  # ~6 s of training
    job_id = stack.submit(config_name="medium", target="worker", worker_labels={"pool": "tr"})["job_id"]
    stack.wait_running(job_id)

    own_temporal.stop()
    own_temporal.restart()
    job = stack.wait_job(job_id, "completed", timeout=120)
    assert job["agent_id"] == worker_id and job["attempt"] == 1, job
    assert agent.alive, agent.log_tail()

    # the agent, the worker host and the API all reconnected: a new job runs end to end
    second = stack.submit(config_name="medium", target="worker", worker_labels={"pool": "tr"})["job_id"]
    assert stack.wait_job(second, "completed", timeout=120)["agent_id"] == worker_id
