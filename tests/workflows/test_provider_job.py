"""A job on a cloud provider, in the workflow: the training is created (after waiting on a timer while
the provider's circuit is open), followed through webhook hints and polls, ended as the provider's run
ended, cancelled at the provider when the job is, and carried across continue-as-new. Each run's history
replays, and those recorded as fixtures (``provider-*``) keep replaying."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, Worker

from tests.workflows.test_training_job import Fakes, finishes, record_history
from workflows.contracts import (
    PROVIDER_CHANGED_SIGNAL, EvaluatedJob, JobResult, JobSubmission, ProviderStart, ProviderSync,
    ProviderSyncRequest, TrainingConfigSpec,
)
from workflows.training_job import TrainingJobWorkflow

JOB_STATUS = {"starting": "queued", "processing": "running", "succeeded": "completed", "failed": "failed",
              "canceled": "cancelled"}


class ProviderFakes(Fakes):
    """The provider activities with the training's recorded state in memory."""

    def __init__(self, starts: list[ProviderStart] | None = None) -> None:
        super().__init__(finishes)
        self.starts = starts or []
        self.provider_status = "starting"
        self.syncs: list[bool] = []
        self.cancels: list[str] = []
        self.start_calls = 0

    @activity.defn(name="evaluate_submission")
    async def evaluate(self, sub: JobSubmission) -> EvaluatedJob:
        self.bind()
        return EvaluatedJob(config=TrainingConfigSpec(name=sub.config_name), gpu_count=1, target="replicate",
                            limits=self.limits(sub), nexus_endpoint=self.endpoint)

    @activity.defn(name="start_provider_training")
    async def start_training(self, job_id: str) -> ProviderStart:
        self.start_calls += 1
        if self.starts:
            return self.starts.pop(0)
        return ProviderStart(training_id="tr-1", poll_seconds=600)

    @activity.defn(name="sync_provider_training")
    async def sync_training(self, req: ProviderSyncRequest) -> ProviderSync:
        self.syncs.append(req.poll)
        status = self.provider_status
        return ProviderSync(training_id="tr-1", provider_status=status, job_status=JOB_STATUS[status],
                            terminal=status in ("succeeded", "failed", "canceled"),
                            error="out of memory" if status == "failed" else None,
                            reason=f"{status} on replicate (training tr-1)")

    @activity.defn(name="cancel_provider_training")
    async def cancel_training(self, job_id: str) -> bool:
        self.cancels.append(job_id)
        self.provider_status = "canceled"
        return True

    def control_activities(self) -> list:
        return [*super().control_activities(), self.start_training, self.sync_training, self.cancel_training]


async def run(env, fakes: ProviderFakes, drive) -> tuple[JobResult | BaseException, list[str], str]:
    sub = JobSubmission(job_id=f"job-{uuid.uuid4().hex[:12]}", owner_id="u1", owner_name="alice",
                        config_name="cloud", target="replicate")
    worker = Worker(env.pyd_client, task_queue=fakes.control_queue, workflows=[TrainingJobWorkflow],
                    activities=fakes.control_activities())
    async with worker:
        handle: WorkflowHandle = await env.pyd_client.start_workflow(
            TrainingJobWorkflow.run, sub, id=sub.job_id, task_queue=fakes.control_queue)
        await drive(fakes, handle)
        try:
            result: JobResult | BaseException = await handle.result()
        except WorkflowFailureError as err:
            result = err
    for run_id in fakes.runs:
        history = await env.pyd_client.get_workflow_handle(sub.job_id, run_id=run_id).fetch_history()
        if run_id in (fakes.runs[0], fakes.runs[-1]):  # the replay fixtures (SIMPLETUNER_RECORD_HISTORIES=1)
            record_history(history, prefix="provider-", suffix="" if len(fakes.runs) == 1 else
                           "-first-run" if run_id == fakes.runs[0] else "-last-run")
        await Replayer(workflows=[TrainingJobWorkflow], data_converter=pydantic_data_converter).replay_workflow(history)
    return result, fakes.statuses(), sub.job_id


async def until(predicate, timeout: float = 20.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.02)
    await asyncio.wait_for(poll(), timeout)


async def hint(fakes: ProviderFakes, handle: WorkflowHandle, status: str) -> None:
    """What the webhook route does: the row first, then a hint to the workflow."""
    seen = len(fakes.syncs)
    fakes.provider_status = status
    await handle.signal(PROVIDER_CHANGED_SIGNAL)
    await until(lambda: len(fakes.syncs) > seen)


async def test_webhook_hints_move_the_job_and_the_slot_is_given_back(wf_env):
    async def drive(fakes: ProviderFakes, handle: WorkflowHandle) -> None:
        await until(lambda: fakes.start_calls == 1 and fakes.syncs)
        await hint(fakes, handle, "processing")
        await hint(fakes, handle, "succeeded")

    fakes = ProviderFakes()
    result, statuses, job_id = await run(wf_env, fakes, drive)
    assert isinstance(result, JobResult) and result.status == "completed", result
    assert statuses == ["queued", "running", "completed"]
    assert fakes.syncs and not any(fakes.syncs)  # every read was a hint's: no poll within the long interval
    assert fakes.admissions == [job_id] and fakes.releases == [job_id] and not fakes.cancels


async def test_an_open_circuit_makes_the_job_wait_on_a_timer_then_polls_follow_it(wf_env):
    async def drive(fakes: ProviderFakes, handle: WorkflowHandle) -> None:
        await until(lambda: fakes.start_calls == 2 and fakes.syncs)
        fakes.provider_status = "failed"  # no webhook: the next poll finds it

    fakes = ProviderFakes([ProviderStart(reason="replicate is unavailable (circuit open)", retry_in_seconds=0.5,
                                         poll_seconds=0.5),
                           ProviderStart(training_id="tr-1", poll_seconds=0.5)])
    result, statuses, _ = await run(wf_env, fakes, drive)
    assert isinstance(result, JobResult) and (result.status, result.error) == ("failed", "out of memory"), result
    assert statuses == ["queued", "queued", "failed"], statuses
    assert fakes.transitions[0].queue_reason == "replicate is unavailable (circuit open)"
    assert True in fakes.syncs  # polled


async def test_cancelling_the_job_cancels_the_training_at_the_provider(wf_env):
    async def drive(fakes: ProviderFakes, handle: WorkflowHandle) -> None:
        await until(lambda: fakes.syncs)
        await hint(fakes, handle, "processing")
        await until(lambda: "running" in fakes.statuses())
        await handle.cancel()

    fakes = ProviderFakes()
    result, statuses, job_id = await run(wf_env, fakes, drive)
    assert isinstance(result, WorkflowFailureError), result
    assert statuses == ["queued", "running", "cancelled"] and fakes.cancels == [job_id]
    assert fakes.releases == [job_id]


@pytest.mark.parametrize("limit", [100])
async def test_a_long_provider_run_continues_as_new_and_ends_once(wf_env, limit):
    async def drive(fakes: ProviderFakes, handle: WorkflowHandle) -> None:
        await until(lambda: fakes.syncs)
        await hint(fakes, handle, "processing")
        for _ in range(60):  # log webhooks: each a hint and a read
            await hint(fakes, handle, "processing")
        await hint(fakes, handle, "succeeded")

    fakes = ProviderFakes()
    fakes.max_history_events = limit
    result, statuses, _ = await run(wf_env, fakes, drive)
    assert isinstance(result, JobResult) and result.status == "completed", result
    assert len(fakes.runs) >= 2, fakes.runs
    assert statuses == ["queued", "running", "completed"]
    assert [t.seq for t in fakes.transitions] == [1, 2, 3]
    assert fakes.start_calls >= len(fakes.runs)  # each run asks again; the training is the same one
