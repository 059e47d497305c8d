"""``continue_job_run``: a job workflow's new run (continue-as-new) takes over the job's binding.

Job activities run only for the run the database has bound to the job (``binding``). When a run
continues as new, its successor asks for the binding with the id of the run it continues. Nothing in
that request is believed: Temporal's own history of the calling run must begin with a start event
that names the bound run as the one it continues (only the server writes that, on continue-as-new),
so a workflow started by anyone else under the job's id, after terminating the real one, never
inherits the job.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from sqlmodel import Session
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from activities.db.models import Job
from activities.temporal.binding import refuse
from workflows.contracts import RunContinuation

log = logging.getLogger(__name__)


class ContinuationActivities:
    def __init__(self, session_factory: Callable[[], Session], client: Client) -> None:
        self._session = session_factory
        self._client = client

    @activity.defn(name="continue_job_run")
    async def continue_job_run(self, req: RunContinuation) -> None:
        info = activity.info()
        continues = await self._continued_run(req.job_id, info.workflow_run_id) if info.workflow_id == req.job_id else None
        await asyncio.to_thread(self._rebind, req.job_id, info.workflow_id, info.workflow_run_id, continues)

    async def _continued_run(self, workflow_id: str, run_id: str) -> str | None:
        """The run that ``run_id`` continues, from the server's own start event (None: a fresh start)."""
        handle = self._client.get_workflow_handle(workflow_id, run_id=run_id)
        async for event in handle.fetch_history_events(page_size=1):
            if event.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                return None
            return event.workflow_execution_started_event_attributes.continued_execution_run_id or None
        return None

    def _rebind(self, job_id: str, workflow_id: str, run_id: str, continues: str | None) -> None:
        with self._session() as session:
            job = session.get(Job, job_id)
            if job is None or workflow_id != job_id:
                refuse(session, job_id, f"workflow {workflow_id!r} asked to take over job {job_id!r}")
            assert job is not None
            if job.workflow_run_id == run_id:
                return  # a retried call: already ours
            if job.workflow_run_id is None or continues != job.workflow_run_id:
                refuse(session, job_id, f"run {run_id} does not continue the job's run {job.workflow_run_id} "
                                        f"(Temporal says it continues {continues or 'nothing'})")
            job.workflow_run_id = run_id
            session.add(job)
            session.commit()
            log.info("job %s: workflow continued as new in run %s", job_id, run_id)
