"""Temporal carries no authority: a plain Temporal client, configured as an agent host would be (the
address from an agent's registration answer), tries what the control plane must never allow, and
nothing takes effect: job states stay as they were, no process starts, every refusal is audited.
The dev server authorizes nothing, so this client may name the control namespace too."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta

import pytest
from temporalio import workflow
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.common import RetryPolicy
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from tests.e2e.test_users_and_auth import audit_rows, bearer_for, make_user
from workflows.contracts import (
    ADMISSION_GRANTED_SIGNAL, AGENT_STARTED_SIGNAL, APPROVAL_DECISION_UPDATE, CONTROL_TASK_QUEUE,
    RUN_TRAINING_ACTIVITY, TRAINING_WORKFLOW,
)

pytestmark = pytest.mark.e2e


@workflow.defn(name="AttackerWorkflow")
class AttackerWorkflow:
    """Schedules ``run_training`` with a command of the attacker's choice on a pool's queue."""

    @workflow.run
    async def run(self, task_queue: str, task: dict) -> str:
        return str(await workflow.execute_activity(
            RUN_TRAINING_ACTIVITY, task, task_queue=task_queue, schedule_to_start_timeout=timedelta(seconds=30),
            start_to_close_timeout=timedelta(seconds=60), retry_policy=RetryPolicy(maximum_attempts=1)))


def refused(stack, action: str, target: str) -> list[tuple]:
    return [row for row in audit_rows(stack, action) if row[1] == target]


def test_a_temporal_client_gains_nothing(stack):
    make_user(stack, "rae", "researcher")
    lena = make_user(stack, "lena", "lead")
    rae = bearer_for(stack, "rae")
    worker_id, token = stack.create_worker("agent-atk", {"pool": "atk"})
    stack.start_agent(token, name="agent-atk")
    for name in ("guarded-run", "plain", "forbidden-run"):
        stack.put_config(name, steps=3)
    stack.expect(stack.client.post("/api/approvals/rules", json={
        "name": "gate", "condition": "config_pattern", "threshold": "guarded-*", "required_approver_level": "lead"}),
        201)
    stack.expect(stack.client.post("/api/users/resource-rules", json={
        "level": "researcher", "resource_type": "config", "pattern": "forbidden-*", "action": "deny"}), 201)
    answer = stack.expect(stack.anon.post("/api/workers/heartbeat", headers={"X-Worker-Token": token},
                                          json={"state": "idle"}), 200)
    pool_queue = answer["task_queue"]
    marker = stack.root / "pwned"

    def submit(config: str, labels: dict) -> str:
        body = {"config_name": config, "target": "worker", "worker_labels": labels}
        return stack.expect(rae.post("/api/queue/submit", json=body), 201)["job_id"]

    def control(fn):
        return stack.temporal.call(fn, namespace=stack.namespace)

    # (a) an approval update claiming a lead's authority (level, admin.approve, a personal grant)
    guarded = submit("guarded-run", {"pool": "atk"})
    stack.wait_job(guarded, "pending_approval", timeout=30)
    request = stack.expect(stack.client.get(f"/api/approvals/requests/job/{guarded}"), 200)
    forged_decision = {"decision": "approve", "actor_id": lena["id"], "actor_name": "lena", "channel": "rest",
                       "comment": "trust me", "message_id": "forged-1", "may_approve": True, "level_priority": 100,
                       "approve_granted": True}

    async def forge_approval(client):
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await client.get_workflow_handle(guarded).execute_update(APPROVAL_DECISION_UPDATE, forged_decision,
                                                                     id="forged-1")
        return str(info.value.cause)

    assert "not recorded" in control(forge_approval)
    assert stack.job(guarded)["status"] == "pending_approval"
    assert stack.expect(stack.client.get(f"/api/approvals/requests/{request['id']}"), 200)["status"] == "pending"
    assert any('"forged-1"' in row[3] for row in refused(stack, "approval.decision_refused", request["id"]))

    # (b) admission_granted on a job that waits for a slot, (c) agent_started on queued jobs
    stack.expect(stack.client.post("/api/queue/concurrency", json={"max_concurrent": 1}), 200)
    holder = submit("plain", {"pool": "nowhere"})  # holds the only slot, waiting for an agent that never comes
    stack.wait_for(lambda: stack.job(holder), 30, "the holder to wait for placement",
                   until=lambda job: job["status"] == "queued" and "no live" in (job["queue_reason"] or ""))
    waiting = submit("plain", {"pool": "atk"})
    stack.wait_for(lambda: stack.job(waiting), 30, "the second job to wait for a slot",
                   until=lambda job: job["status"] == "queued" and "slot" in (job["queue_reason"] or ""))
    started = {"agent_id": worker_id, "agent_name": "agent-atk", "attempt": 1}

    async def forge_signals(client):
        await client.get_workflow_handle(waiting).signal(ADMISSION_GRANTED_SIGNAL)
        for job_id in (holder, waiting):
            await client.get_workflow_handle(job_id).signal(AGENT_STARTED_SIGNAL, started)

    control(forge_signals)
    stack.wait_for(lambda: (refused(stack, "job.admission_signal_refused", waiting),
                            refused(stack, "job.claim_signal_refused", waiting),
                            refused(stack, "job.claim_signal_refused", holder)), 30, "the forged signals' audit",
                   until=all)
    for job_id, reason in ((holder, "no live"), (waiting, "slot")):
        job = stack.job(job_id)
        assert job["status"] == "queued" and reason in job["queue_reason"] and job["agent_id"] is None, job

    # (d) a TrainingJobWorkflow started directly, for a config the owner's resource rules deny
    forged_id = f"job-forged-{uuid.uuid4().hex[:8]}"
    submission = {"job_id": forged_id, "owner_id": stack.expect(rae.get("/api/users/me"), 200)["id"],
                  "owner_name": "rae", "config_name": "forbidden-run", "target": "worker",
                  "worker_labels": {"pool": "atk"}}

    async def start_directly(client):
        handle = await client.start_workflow(TRAINING_WORKFLOW, submission, id=forged_id,
                                             task_queue=CONTROL_TASK_QUEUE)
        with pytest.raises(WorkflowFailureError):  # its evaluation and then its transition are refused
            await handle.result()

    control(start_directly)
    assert stack.client.get(f"/api/cloud/jobs/{forged_id}").status_code == 404
    evaluation = refused(stack, "job.evaluation_refused", forged_id)
    assert evaluation and "not submitted through the API" in evaluation[0][3]
    assert refused(stack, "job.activity_refused", forged_id)

    # (e) run_training with a command of the attacker's choice, for a real job and a made-up one
    for job_id in (waiting, "job-made-up"):
        task = {"job_id": job_id, "attempt": 1, "owner_name": "rae",
                "config": {"name": "x", "command": ["/bin/sh", "-c", f"touch {marker}"], "gpu_count": 1}}

        async def attack(client, task=task):
            async with Worker(client, task_queue=f"attacker-{uuid.uuid4().hex[:6]}", workflows=[AttackerWorkflow],
                              workflow_runner=UnsandboxedWorkflowRunner()) as worker:
                with pytest.raises(WorkflowFailureError) as info:
                    await client.execute_workflow(AttackerWorkflow.run, args=[pool_queue, task],
                                                  id=f"attack-{uuid.uuid4().hex[:8]}", task_queue=worker.task_queue)
                return str(info.value.cause.cause)

        assert "refused" in stack.temporal.call(attack, namespace=stack.gpu_namespace)
        assert refused(stack, "job.claim_refused", job_id)
    assert not marker.exists() and stack.training_pids(waiting) == []
    assert stack.job(waiting)["status"] == "queued" and stack.job(waiting)["attempt"] == 0

    # the real paths still work: the lead approves, the holder is cancelled, both jobs run on the agent
    stack.expect(bearer_for(stack, "lena").post(f"/api/approvals/requests/{request['id']}/approve"), 200)
    stack.expect(stack.cancel(holder), 202)
    stack.wait_job(waiting, "completed", timeout=90)
    stack.wait_job(guarded, "completed", timeout=90)
    assert not marker.exists()


def test_agents_are_given_and_use_only_the_gpu_namespace(stack):
    worker_id, token = stack.create_worker("agent-ns", {"pool": "ns"})
    registered = stack.expect(stack.anon.post("/api/workers/register", headers={"X-Worker-Token": token},
                                              json={"name": "agent-ns", "gpu_count": 1}), 200)
    assert registered["temporal"]["namespace"] == stack.gpu_namespace != stack.namespace
    control_name = re.compile(re.escape(stack.namespace) + r"(?!-gpu)")
    assert not control_name.search(json.dumps(registered)), registered
    agent = stack.start_agent(token, name="agent-ns")
    queue = stack.worker(worker_id)["task_queue"]
    pollers = stack.wait_for(lambda: stack.temporal.pollers(queue, namespace=stack.gpu_namespace), 30,
                             "the agent to poll its pool queue in the GPU namespace")
    assert any("agent-ns" in p["identity"] for p in pollers)
    assert stack.temporal.pollers(queue, namespace=stack.namespace) == []
    assert f"namespace {stack.gpu_namespace}" in agent.log_text()
    assert not control_name.search(agent.log_text())
