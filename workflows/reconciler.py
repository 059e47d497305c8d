"""ReconcilerWorkflow: one pass of the reconciler, started every minute by a Temporal Schedule.

Finishes jobs whose workflow closed without recording their end (terminated, timed out, reset away)
and frees slots held by ended jobs (``activities/temporal/reconciler.py``). Short-lived: each run is
one activity, so nothing grows; the Schedule skips a tick while a pass is still running.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import RECONCILER_WORKFLOW, ReconcileReport


@workflow.defn(name=RECONCILER_WORKFLOW)
class ReconcilerWorkflow:
    @workflow.run
    async def run(self) -> ReconcileReport:
        report = await workflow.execute_activity(
            "reconcile_jobs", result_type=ReconcileReport, start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(minutes=2), retry_policy=RetryPolicy(maximum_attempts=3))
        workflow.set_current_details(f"checked {report.checked} open job(s); finished {len(report.finished)}; "
                                     f"freed {len(report.slots_freed)} slot(s)")
        return report
