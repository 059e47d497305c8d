"""``reconcile_jobs``: run by the reconciler schedule every minute (``workflows/reconciler.py``).

For every job not yet ended, Temporal is asked about the job's workflow (its latest run). Running:
nothing to do. Closed (terminated from the Web UI or the CLI, timed out, failed, or ended without
recording an outcome) or missing: the job is finished in the database with Temporal's reason
(``terminated by <identity>: <reason>``), its slot freed, its approval request closed, its open
dispatches closed, and the GPU plane's dispatch workflows of the job are cancelled so an agent still
running its training kills it. Then slots still held by ended jobs are given back and an admission
pass runs, so the next job is admitted at once.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Callable

from sqlmodel import Session
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistoryEventFilterType
from temporalio.service import RPCError, RPCStatusCode

from activities.capacity.admission_signals import notify_admitted, run_pass
from activities.db.models import utcnow
from activities.jobs import reconcile
from workflows.contracts import ReconcileReport, dispatch_workflow_id

log = logging.getLogger(__name__)

START_GRACE = timedelta(minutes=5)  # a job row is written just before its workflow starts


class ReconcilerActivities:
    def __init__(self, session_factory: Callable[[], Session], client: Client, gpu_client: Client) -> None:
        self._session = session_factory
        self._client = client
        self._gpu = gpu_client

    @activity.defn(name="reconcile_jobs")
    async def reconcile_jobs(self) -> ReconcileReport:
        report = ReconcileReport()
        job_ids = await asyncio.to_thread(self._read, lambda s: reconcile.open_jobs(s, utcnow() - timedelta(seconds=2)))
        for job_id in job_ids:
            activity.heartbeat(job_id)
            report.checked += 1
            verdict = await self._workflow_verdict(job_id)
            if verdict is None:
                continue
            status, reason, source = verdict
            if await asyncio.to_thread(self._finish, job_id, status, reason, source):
                report.finished.append(job_id)
                log.warning("job %s: its workflow %s; finished as %s", job_id, reason, status)
                await self._cancel_dispatches(job_id)
        report.slots_freed = await asyncio.to_thread(self._write, reconcile.stale_admissions)
        await asyncio.to_thread(run_pass, self._session)
        await notify_admitted(self._session, self._client)
        return report

    async def _workflow_verdict(self, job_id: str) -> tuple[str, str, str] | None:
        """(status, reason, workflow state) for a job whose workflow is no longer running; else None."""
        handle = self._client.get_workflow_handle(job_id)
        try:
            described = await handle.describe()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            created = await asyncio.to_thread(self._read, lambda s: reconcile.created_at(s, job_id))
            if created is None or created > utcnow() - START_GRACE:
                return None  # being submitted right now
            return "failed", "its workflow does not exist in Temporal", "missing"
        state = described.status
        if state in (None, WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.CONTINUED_AS_NEW):
            return None
        close = None
        async for event in handle.fetch_history_events(event_filter_type=WorkflowHistoryEventFilterType.CLOSE_EVENT):
            close = event
        name = state.name.lower()
        if state == WorkflowExecutionStatus.TERMINATED:
            attrs = close.workflow_execution_terminated_event_attributes if close else None
            who = (attrs.identity if attrs else "") or "unknown"
            why = (attrs.reason if attrs else "") or "no reason given"
            return "failed", f"terminated by {who}: {why}", name
        if state == WorkflowExecutionStatus.CANCELED:
            return "cancelled", "its workflow was cancelled before it recorded the end", name
        if state == WorkflowExecutionStatus.TIMED_OUT:
            return "failed", "its workflow timed out", name
        if state == WorkflowExecutionStatus.FAILED and close is not None \
                and close.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
            return "failed", f"its workflow failed: {close.workflow_execution_failed_event_attributes.failure.message}", name
        return "failed", f"its workflow ended ({name}) without recording the job's end", name

    async def _cancel_dispatches(self, job_id: str) -> None:
        """Cancel the job's dispatch workflows in the GPU namespace: a running attempt's agent kills it."""
        count = await asyncio.to_thread(self._read, lambda s: reconcile.dispatch_count(s, job_id))
        for seq in range(1, count + 1):
            try:
                await self._gpu.get_workflow_handle(dispatch_workflow_id(job_id, seq)).cancel()
            except RPCError as exc:
                if exc.status not in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
                    raise

    def _finish(self, job_id: str, status: str, reason: str, source: str) -> bool:
        return self._write(lambda s: reconcile.finish_orphan(s, job_id, status, reason, source))

    def _read(self, read):
        with self._session() as session:
            return read(session)

    def _write(self, change):
        with self._session() as session:
            result = change(session)
            session.commit()
            return result
