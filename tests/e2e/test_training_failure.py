"""A training process that exits non-zero fails the job at once: no retry on another attempt."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.e2e

EXIT_CODE = re.compile(r"exit[\s_-]*(?:ed\s+with\s+)?(?:code|status)\D{0,3}(-?\d+)", re.IGNORECASE)
TRAIN_TINY_FAILURE_CODE = 3  # examples/train_tiny.py exits 3 at ``fail_at_step``


def test_exit_code_regex():
    for text in ("training process exited with code 1", "exit code 3", "exit_code=2", "non-zero exit status 7",
                 "exited with status 1", "Exit code: 1"):
        assert EXIT_CODE.search(text), text
    assert not EXIT_CODE.search("training failed")


def test_failing_training_process_fails_job_without_retry(stack):
    worker_id, token = stack.create_worker("agent-1", {"pool": "fail"})
    stack.start_agent(token, name="agent-1")
    stack.put_config("fails", steps=20, step_delay_seconds=0.01, fail_at_step=5)

    job_id = stack.submit(config_name="fails", target="worker", worker_labels={"pool": "fail"})["job_id"]
    job = stack.wait_job(job_id, "failed", timeout=90)
    assert job["attempt"] == 1, job
    assert job["agent_id"] == worker_id, job
    match = EXIT_CODE.search(job["error"] or "")
    assert match, f"error should mention the exit code: {job['error']!r}"
    assert int(match.group(1)) == TRAIN_TINY_FAILURE_CODE, job["error"]
    assert job["finished_at"], job
    assert job["outputs"] == [], job

    # The workflow is closed, so no further attempt can ever start.
    stack.wait_for(lambda: stack.workflow_status(job_id), 30, f"workflow {job_id} to close",
                   until=lambda status: status != "RUNNING")
    job = stack.job(job_id)
    assert job["status"] == "failed" and job["attempt"] == 1, job
    lines = stack.logs(job_id)
    assert lines and {line["attempt"] for line in lines} == {1}, lines[:5]
    assert not stack.training_pids(job_id)
    stack.wait_worker(worker_id, "idle", timeout=30)
