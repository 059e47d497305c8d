"""The reconciler: workflows terminated from outside (the ``temporal`` CLI here, as an operator
would in the Web UI) leave no job half-done. One reconciler run, triggered through its Schedule,
finishes a running, a queued and an approval-waiting job whose workflows were terminated: rows
``failed`` with Temporal's reason, the running training killed, the slot freed so the waiting job is
admitted at once and runs, the approval request closed, each audited."""

from __future__ import annotations

import asyncio
import subprocess

import pytest
from temporalio.client import Client, ScheduleOverlapPolicy

from cli.temporal_dev import temporal_binary
from tests.e2e.test_users_and_auth import bearer_for, make_user
from workflows.contracts import RECONCILER_SCHEDULE_ID

pytestmark = pytest.mark.e2e


def terminate(stack, job_id: str, reason: str) -> None:
    subprocess.run([temporal_binary(), "workflow", "terminate", "--workflow-id", job_id, "--reason", reason,
                    "--address", stack.temporal.address, "--namespace", stack.namespace],
                   check=True, capture_output=True, timeout=30)


def trigger_reconciler(stack) -> None:
    """A pass now, even while the Schedule's own minute tick runs one (its overlap policy would skip
    this trigger, and the tick may have looked before the terminations)."""
    async def go() -> None:
        client = await Client.connect(stack.temporal.address, namespace=stack.namespace)
        await client.get_schedule_handle(RECONCILER_SCHEDULE_ID).trigger(overlap=ScheduleOverlapPolicy.ALLOW_ALL)
    asyncio.run(go())


def audit_actions(stack, job_id: str) -> list[str]:
    return [r["action"] for r in stack.sql("SELECT action FROM auditentry WHERE target_id = :j ORDER BY id", j=job_id)]


@pytest.mark.slow  # a long scenario: make slow (CI runs it after make test)
def test_terminated_workflows_are_finished_and_their_slots_freed(stack):
    _, token = stack.create_worker("only", {"pool": "main"})
    stack.start_agent(token, name="only")
    stack.put_config("long", steps=100000, step_delay_seconds=0.05)
    stack.put_config("tiny")
    stack.put_config("gated-tiny")
    stack.expect(stack.client.post("/api/queue/concurrency", json={"max_concurrent": 1}), 200)
    stack.expect(stack.client.post("/api/approvals/rules", json={
        "name": "gated", "condition": "config_pattern", "threshold": "gated-*", "required_approver_level": "admin"}),
        201)
    make_user(stack, "rae", "researcher")
    rae = bearer_for(stack, "rae")
    labels = {"target": "worker", "worker_labels": {"pool": "main"}}

    running = stack.submit(config_name="long", **labels)["job_id"]
    stack.wait_running(running)
    queued = stack.submit(config_name="long", **labels)["job_id"]
    after = stack.submit(config_name="tiny", **labels)["job_id"]
    gated = stack.expect(rae.post("/api/queue/submit", json={"config_name": "gated-tiny", **labels}), 201)["job_id"]
    stack.wait_job(queued, "queued", timeout=30)
    stack.wait_job(gated, "pending_approval", timeout=30)
    request = stack.expect(stack.client.get(f"/api/approvals/requests/job/{gated}"), 200)

    for job_id in (running, queued, gated):
        terminate(stack, job_id, "stuck, cleaning up")
    trigger_reconciler(stack)

    for job_id in (running, queued, gated):
        job = stack.wait_job(job_id, "failed", timeout=60)
        assert job["error"].startswith("terminated by ") and job["error"].endswith(": stuck, cleaning up"), job
        assert "job.reconciled" in audit_actions(stack, job_id)
    assert stack.wait_job(after, "completed", timeout=90)["attempt"] == 1  # the freed slot went to the next job
    assert stack.expect(stack.client.get(f"/api/approvals/requests/{request['id']}"), 200)["status"] == "cancelled"
    stack.wait_for(lambda: not stack.training_pids(running), 30, "the terminated job's training to be killed")
    assert stack.job(running)["status"] == "failed"  # the agent's late reports changed nothing
