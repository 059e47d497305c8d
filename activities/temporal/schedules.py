"""The Temporal Schedules the worker host keeps: the reconciler, every minute (visible in the Web UI
under Schedules). Created when a worker host starts; an existing one is left as it is, so several
worker hosts, or an operator's pause, do not fight."""

from __future__ import annotations

import logging
from datetime import timedelta

from temporalio.client import (
    Client, Schedule, ScheduleActionStartWorkflow, ScheduleAlreadyRunningError, ScheduleIntervalSpec,
    ScheduleOverlapPolicy, SchedulePolicy, ScheduleSpec, ScheduleState,
)

from workflows.contracts import CONTROL_TASK_QUEUE, RECONCILER_SCHEDULE_ID, RECONCILER_WORKFLOW

log = logging.getLogger(__name__)

RECONCILE_EVERY = timedelta(minutes=1)


async def ensure_reconciler_schedule(client: Client) -> None:
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(RECONCILER_WORKFLOW, id=f"{RECONCILER_SCHEDULE_ID}-run",
                                           task_queue=CONTROL_TASK_QUEUE, execution_timeout=timedelta(minutes=30)),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=RECONCILE_EVERY)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(note="finishes jobs whose workflow was terminated or lost; frees their slots"))
    try:
        await client.create_schedule(RECONCILER_SCHEDULE_ID, schedule)
        log.info("created the reconciler schedule %s (every %s)", RECONCILER_SCHEDULE_ID, RECONCILE_EVERY)
    except ScheduleAlreadyRunningError:
        pass
