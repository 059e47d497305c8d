"""Placement: glob label selectors, GPU counts, and the worker/local/auto targets."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


def _assert_waiting(stack, job_id: str) -> dict:
    job = stack.wait_job(job_id, "queued", timeout=30)
    assert job["queue_reason"], f"a queued job says why it waits: {job}"
    assert not job["agent_id"], job
    return job


def test_label_globs_and_gpu_count(stack):
    worker_id, token = stack.create_worker("a100-box", {"gpu_type": "a100-80g"})
    stack.start_agent(token, name="a100-box", gpu_count=2)
    assert stack.worker(worker_id)["gpu_count"] == 2
    stack.put_config("quick", steps=5, step_delay_seconds=0.01)

    h100 = stack.submit(config_name="quick", target="worker", worker_labels={"gpu_type": "h100*"})["job_id"]
    too_big = stack.submit(config_name="quick", target="worker", worker_labels={"gpu_type": "a100*"},
                           gpu_count=4)["job_id"]
    missing_key = stack.submit(config_name="quick", target="worker", worker_labels={"zone": "*"})["job_id"]
    for job_id in (h100, too_big, missing_key):
        _assert_waiting(stack, job_id)

    glob = stack.submit(config_name="quick", target="worker", worker_labels={"gpu_type": "a100*"})["job_id"]
    exact = stack.submit(config_name="quick", target="worker", worker_labels={"gpu_type": "a100-80g"},
                         gpu_count=2)["job_id"]
    for job_id in (glob, exact):
        job = stack.wait_job(job_id, "completed", timeout=90)
        assert job["agent_id"] == worker_id, job

    # The unmatched jobs were submitted first and are still waiting after the others ran.
    for job_id in (h100, too_big, missing_key):
        job = stack.job(job_id)
        assert job["status"] == "queued" and job["queue_reason"] and not job["agent_id"], job
        assert stack.training_pids(job_id) == []
    assert stack.job(too_big)["gpu_count"] == 4


def test_targets_with_local_and_remote_agents(stack):
    local_id, local_token = stack.create_worker("local-box", {}, local=True)
    stack.start_agent(local_token, name="local-box")
    stack.put_config("quick", steps=5, step_delay_seconds=0.01)

    remote_only = stack.submit(config_name="quick", target="worker")["job_id"]
    _assert_waiting(stack, remote_only)

    for target in ("auto", "local"):
        job_id = stack.submit(config_name="quick", target=target)["job_id"]
        job = stack.wait_job(job_id, "completed", timeout=90)
        assert job["agent_id"] == local_id, (target, job)
        assert job["target"] == target, job

    job = stack.job(remote_only)
    assert job["status"] == "queued" and not job["agent_id"], f"target=worker must never use a local agent: {job}"

    # A remote agent appears: the waiting job is dispatched to it, and `auto` now prefers it.
    remote_id, remote_token = stack.create_worker("remote-box", {})
    stack.start_agent(remote_token, name="remote-box")
    job = stack.wait_job(remote_only, "completed", timeout=90)
    assert job["agent_id"] == remote_id, job

    auto = stack.submit(config_name="quick", target="auto")["job_id"]
    job = stack.wait_job(auto, "completed", timeout=90)
    assert job["agent_id"] == remote_id, f"auto prefers a non-local agent: {job}"

    local_again = stack.submit(config_name="quick", target="local")["job_id"]
    job = stack.wait_job(local_again, "completed", timeout=90)
    assert job["agent_id"] == local_id, job
