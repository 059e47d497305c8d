"""Admission activities: take a place in line (maybe a slot at once), give the slot back.

Each call runs an admission pass in one transaction, then signals ``admission_granted`` to every
admitted job not yet told (also ones admitted by an earlier pass whose signal was lost), and
records that they were told. The API does the same after changing a limit or a priority.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from sqlmodel import Session
from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.db.models_queue import Admission
from activities.capacity import admission
from workflows.contracts import ADMISSION_GRANTED_SIGNAL, AdmissionRequest, AdmissionTicket

log = logging.getLogger(__name__)


async def notify_admitted(session_factory: Callable[[], Session], client: Client, skip: str | None = None) -> int:
    """Signal every admitted-but-untold job; returns how many were told."""
    def pending() -> list[str]:
        with session_factory() as session:
            return [a.job_id for a in admission.unnotified(session) if a.job_id != skip]

    job_ids = await asyncio.to_thread(pending)
    if not job_ids:
        return 0

    async def tell(job_id: str) -> str | None:
        try:
            await client.get_workflow_handle(job_id).signal(ADMISSION_GRANTED_SIGNAL)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:  # a finished workflow needs no telling
                log.warning("could not tell job %s it was admitted: %s", job_id, exc)
                return None
        return job_id

    told = [j for j in await asyncio.gather(*(tell(j) for j in job_ids)) if j]

    def mark() -> None:
        with session_factory() as session:
            admission.mark_notified(session, told)
            session.commit()

    await asyncio.to_thread(mark)
    return len(told)


def run_pass(session_factory: Callable[[], Session]) -> list[str]:
    with session_factory() as session:
        admitted = [d.admission.job_id for d in admission.admit_pass(session) if d.admit]
        session.commit()
        return admitted


class AdmissionActivities:
    def __init__(self, session_factory: Callable[[], Session], client: Client) -> None:
        self._session = session_factory
        self._client = client

    @activity.defn(name="request_admission")
    async def request_admission(self, req: AdmissionRequest) -> AdmissionTicket:
        ticket = await asyncio.to_thread(self._enqueue_and_pass, req)
        await notify_admitted(self._session, self._client, skip=req.job_id)
        return ticket

    def _enqueue_and_pass(self, req: AdmissionRequest) -> AdmissionTicket:
        s = req.scope
        with self._session() as session:
            admission.enqueue(session, Admission(
                job_id=req.job_id, user_id=s.user_id, username=s.username, level=s.level, team_id=s.team_id,
                team_slug=s.team_slug, org_id=s.org_id, org_slug=s.org_slug, priority=s.priority))
            decisions = admission.admit_pass(session)
            row = session.get(Admission, req.job_id)
            assert row is not None
            if row.state == "admitted":
                admission.mark_notified(session, [req.job_id])  # told by this very answer
                session.commit()
                return AdmissionTicket(admitted=True)
            reason = next((d.reason for d in decisions if d.admission.job_id == req.job_id), None)
            session.commit()
            return AdmissionTicket(admitted=False, reason=reason)

    @activity.defn(name="release_admission")
    async def release_admission(self, job_id: str) -> None:
        await asyncio.to_thread(self._release_and_pass, job_id)
        await notify_admitted(self._session, self._client)

    def _release_and_pass(self, job_id: str) -> None:
        with self._session() as session:
            if admission.release(session, job_id):
                admission.admit_pass(session)
            session.commit()
