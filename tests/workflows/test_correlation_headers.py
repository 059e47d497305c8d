"""The correlation id travels through Temporal in headers: a workflow run keeps the id of the call that
started it (also after continue-as-new), a signal's or an update's handler works under the id of its
own call, and each activity sees the id of whatever scheduled it."""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.worker import Worker

from activities.observability import correlation
from activities.observability.temporal_interceptor import HEADER_KEY, CorrelationInterceptor


@activity.defn
async def id_seen_by_activity(where: str) -> str:
    return f"{where}={correlation.current()}"


@activity.defn
def id_seen_by_thread_activity(where: str) -> str:  # control activities run in a thread pool
    return f"{where}={correlation.current()}"


_ONE_TRY = dict(start_to_close_timeout=timedelta(seconds=20), retry_policy=RetryPolicy(maximum_attempts=1))


@workflow.defn
class CorrelationEcho:
    def __init__(self) -> None:
        self.seen: list[str] = []
        self.finished = False

    @workflow.run
    async def run(self, continued: bool) -> list[str]:
        self.seen.append(await workflow.execute_activity(id_seen_by_activity, "continued" if continued else "run",
                                                         **_ONE_TRY))
        if not continued:
            self.seen.append(await workflow.execute_activity(id_seen_by_thread_activity, "thread", **_ONE_TRY))
            await workflow.wait_condition(lambda: self.finished)
            workflow.continue_as_new(True)
        return self.seen

    @workflow.update
    async def decide(self) -> str:
        return await workflow.execute_activity(id_seen_by_activity, "update", **_ONE_TRY)

    @workflow.signal
    async def finish(self) -> None:
        self.seen.append(await workflow.execute_activity(id_seen_by_activity, "signal", **_ONE_TRY))
        self.finished = True


async def test_ids_follow_each_call_through_workflows_and_activities(wf_env):
    from concurrent.futures import ThreadPoolExecutor

    client = Client(wf_env.client.service_client, namespace=wf_env.client.namespace,
                    interceptors=[CorrelationInterceptor()])
    queue = f"correlation-{uuid.uuid4().hex[:8]}"
    with ThreadPoolExecutor(max_workers=2) as executor:
        async with Worker(client, task_queue=queue, workflows=[CorrelationEcho],
                          activities=[id_seen_by_activity, id_seen_by_thread_activity], activity_executor=executor):
            with correlation.correlation("submit-1"):
                handle = await client.start_workflow(CorrelationEcho.run, False, id=f"cid-{queue}", task_queue=queue)
            with correlation.correlation("decision-2"):
                assert await handle.execute_update(CorrelationEcho.decide) == "update=decision-2"
            with correlation.correlation("cancel-3"):
                await handle.signal(CorrelationEcho.finish)
            seen = await handle.result()
    # the signal's activity ran in the first run, whose list is carried only in its history: the second
    # run starts afresh with the start's id, carried by continue-as-new
    assert seen == ["continued=submit-1"], seen
    history = [e async for e in client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
               .fetch_history_events()]
    scheduled = [e.activity_task_scheduled_event_attributes for e in history if e.HasField("activity_task_scheduled_event_attributes")]
    ids = sorted((a.input.payloads[0].data.decode(), correlation_from(a.header.fields)) for a in scheduled)
    assert ids == [('"run"', "submit-1"), ('"signal"', "cancel-3"), ('"thread"', "submit-1"),
                   ('"update"', "decision-2")], ids
    results = sorted(e.activity_task_completed_event_attributes.result.payloads[0].data.decode() for e in history
                     if e.HasField("activity_task_completed_event_attributes"))
    assert results == ['"run=submit-1"', '"signal=cancel-3"', '"thread=submit-1"', '"update=decision-2"'], results


def correlation_from(fields) -> str | None:
    from temporalio.converter import PayloadConverter

    payload = fields.get(HEADER_KEY)
    return None if payload is None else PayloadConverter.default.from_payloads([payload])[0]


async def test_a_header_that_is_not_a_safe_id_is_ignored(wf_env):
    """Anyone may write headers: a value that is not a safe id never becomes the id in effect."""
    from temporalio.converter import PayloadConverter

    from activities.observability.temporal_interceptor import _id_from

    bad = PayloadConverter.default.to_payloads(["has spaces\nand a newline"])[0]
    good = PayloadConverter.default.to_payloads(["ok-id_1.2:3"])[0]
    assert _id_from({HEADER_KEY: bad}) is None
    assert _id_from({HEADER_KEY: good}) == "ok-id_1.2:3"
    assert _id_from({}) is None and _id_from(None) is None
