"""Admission activities: take a place in line (maybe a slot at once), give the slot back.

Each call runs an admission pass in one transaction, then signals ``admission_granted`` to every
admitted job not yet told (also ones admitted by an earlier pass whose signal was lost), and
records that they were told. The API does the same after changing a limit or a priority.
"""

from __future__ import annotations

import asyncio
from typing import Callable

from sqlmodel import Session
from temporalio import activity
from temporalio.client import Client

from activities.capacity import admission
from activities.capacity.admission_signals import notify_admitted
from activities.db.models_queue import Admission
from workflows.contracts import AdmissionRequest, AdmissionTicket


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
