"""The admission wait of TrainingJobWorkflow: no slot -> queued with the reason, no timer; an
``admission_granted`` signal lets it run once ``confirm_admission`` finds the slot in the database
(a signal anyone could send changes nothing by itself); the slot is given back however the job ends."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.worker import Worker

from tests.helpers import wait_until
from tests.workflows.test_approval_gate import finish
from tests.workflows.test_training_job import Fakes, finishes
from workflows.contracts import (
    ADMISSION_GRANTED_SIGNAL, SA_QUEUE_PRIORITY, SA_TEAM_SLUG, AdmissionRequest, AdmissionTicket, EvaluatedJob,
    JobScope, JobSubmission, TrainingConfigSpec,
)
from workflows.training_job import TrainingJobWorkflow


class QueueFakes(Fakes):
    def __init__(self) -> None:
        super().__init__(finishes)
        self.granted = False  # the admission row's state in the database
        self.confirmations = 0

    @activity.defn(name="evaluate_submission")
    async def evaluate(self, sub: JobSubmission) -> EvaluatedJob:
        return EvaluatedJob(config=TrainingConfigSpec(name=sub.config_name, command=["train"]), gpu_count=1,
                            cost_estimate_usd=12.5, scope=JobScope(user_id="u1", username="alice", level="researcher",
                                                                   priority=20, team_slug="vision"),
                            limits=self.limits(sub), nexus_endpoint=self.endpoint)

    @activity.defn(name="confirm_admission")
    async def confirm_admission(self, job_id: str) -> AdmissionTicket:
        self.confirmations += 1
        return AdmissionTicket(admitted=self.granted, reason=None if self.granted else "no admission recorded")

    @activity.defn(name="request_admission")
    async def request_admission(self, req: AdmissionRequest) -> AdmissionTicket:
        self.admissions.append(req.job_id)
        return AdmissionTicket(admitted=False, reason="all 1 slots are taken (max_concurrent)")


async def start(env, fakes: QueueFakes):
    fakes.endpoint = env.nexus_endpoint
    sub = JobSubmission(job_id=f"job-{uuid.uuid4().hex[:12]}", owner_id="u1", owner_name="alice", config_name="c",
                        placement_recheck_seconds=30)
    workers = (Worker(env.pyd_client, task_queue=fakes.control_queue, workflows=[TrainingJobWorkflow],
                      activities=fakes.control_activities()),
               Worker(env.pyd_client, task_queue=fakes.queue, activities=[fakes.run_training]))
    handle = await env.pyd_client.start_workflow(TrainingJobWorkflow.run, sub, id=sub.job_id,
                                                 task_queue=fakes.control_queue)
    return handle, workers


async def test_waits_for_the_signal_then_runs_and_releases(wf_env):
    fakes = QueueFakes()
    handle, (control, gpu) = await start(wf_env, fakes)
    async with control, gpu:
        await wait_until(lambda: fakes.statuses() == ["queued"], timeout=10, what="queued for a slot")
        assert fakes.transitions[0].queue_reason == "waiting for a slot: all 1 slots are taken (max_concurrent)"
        attrs = None
        for _ in range(200):  # the upsert lands when the workflow task completes, just after the transition
            attrs = (await handle.describe()).typed_search_attributes
            if attrs.get(SA_QUEUE_PRIORITY) is not None:
                break
            await asyncio.sleep(0.02)
        assert attrs.get(SA_QUEUE_PRIORITY) == 20 and attrs.get(SA_TEAM_SLUG) == "vision"
        assert fakes.placement_calls == 0
        await handle.signal(ADMISSION_GRANTED_SIGNAL)  # nobody admitted it: checked, and nothing happens
        await wait_until(lambda: fakes.confirmations == 1, timeout=10, what="the forged grant to be checked")
        assert fakes.statuses() == ["queued"] and fakes.placement_calls == 0
        fakes.granted = True  # an admission pass admits it, then signals
        await handle.signal(ADMISSION_GRANTED_SIGNAL)
        result = await finish(handle)
    assert result.status == "completed"
    assert fakes.statuses() == ["queued", "queued", "running", "completed"]
    assert fakes.releases == [handle.id]


async def test_cancel_while_waiting_gives_the_place_back(wf_env):
    fakes = QueueFakes()
    handle, (control, gpu) = await start(wf_env, fakes)
    async with control, gpu:
        await wait_until(lambda: fakes.statuses() == ["queued"], timeout=10, what="queued for a slot")
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    assert fakes.releases == [handle.id] and fakes.statuses()[-1] == "cancelled"
