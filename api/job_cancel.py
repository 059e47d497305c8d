"""Cancelling a job: the job's workflow is cancelled; it gives back its queue slot and records the end."""

from __future__ import annotations

import asyncio
import logging

from temporalio.service import RPCError, RPCStatusCode

from activities.errors import Conflict, Forbidden, NotFound
from activities.jobs import jobs
from activities.audit.trail import audit
from activities.identity.principals import Principal
from activities.observability.log_context import LogContext
from api.state import AppState
from workflows.contracts import TERMINAL_STATUSES

log = logging.getLogger("simpletuner.api.cancel")


async def cancel_job(state: AppState, principal: Principal, job_id: str, ip: str | None) -> dict:
    def check() -> None:
        with state.db.session() as session:
            job = jobs.get(session, job_id)
            if not principal.may_see(job.owner_id):
                raise NotFound(f"job {job_id!r} not found")
            if not principal.may_see(job.owner_id, "job.cancel"):
                raise Forbidden("you may not cancel this job (needs job.cancel.all, or job.cancel.own on your job)")
            if job.status in TERMINAL_STATUSES:
                raise Conflict(f"job {job_id} is already {job.status}")

    def record() -> None:
        with state.db.session() as session:
            audit(session, principal.username, "job.cancel_requested", "job", job_id, ip=ip)
            session.commit()

    await asyncio.to_thread(check)
    try:
        await state.temporal.get_workflow_handle(job_id).cancel()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise Conflict(f"job {job_id} has already finished") from exc
        raise
    await asyncio.to_thread(record)
    with LogContext(job_id=job_id, user_id=principal.user_id, step="cancel"):
        log.info("cancel of job %s requested by %s", job_id, principal.username)
    return {"job_id": job_id, "cancel_requested": True}
