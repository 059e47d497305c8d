"""Admission activities: take a place in line (maybe a slot at once), confirm a slot, give it back.

Each call runs only for the job's own workflow run. Taking a place reads the job's scope from the
database (owner level or granted priority, team and org charged at evaluation, ``job.bypass.queue``),
never from the request, and needs an evaluated, charged job. Each enqueue or release runs an
admission pass in one transaction, then signals ``admission_granted`` to every admitted job not yet
told (also ones admitted by an earlier pass whose signal was lost). The signal is only a hint: the
workflow confirms its slot with ``confirm_admission`` before it goes on.
"""

from __future__ import annotations

import asyncio
from typing import Callable

from sqlmodel import Session
from temporalio import activity
from temporalio.client import Client

from activities.audit.trail import audit
from activities.capacity import admission
from activities.capacity.admission_signals import notify_admitted
from activities.db.models_queue import Admission
from activities.errors import DomainError
from activities.governance import policy
from activities.temporal.binding import bound_job, refuse
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
        with self._session() as session:
            job = bound_job(session, req.job_id)
            if job.charge_state != "charged":
                refuse(session, req.job_id, f"job {req.job_id} was not accepted by its evaluation")
            try:
                s, bypass = policy.queue_scope(session, job)
            except DomainError as exc:
                refuse(session, req.job_id, exc.detail)
                raise
            admission.enqueue(session, Admission(
                job_id=req.job_id, user_id=s.user_id, username=s.username, level=s.level, team_id=s.team_id,
                team_slug=s.team_slug, org_id=s.org_id, org_slug=s.org_slug, priority=s.priority,
                bypass_queue=bypass))
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

    @activity.defn(name="confirm_admission")
    def confirm_admission(self, job_id: str) -> AdmissionTicket:
        """Does the job really hold a slot? (An ``admission_granted`` signal anyone could have sent.)"""
        with self._session() as session:
            bound_job(session, job_id)
            row = session.get(Admission, job_id)
            if row is not None and row.state == "admitted":
                return AdmissionTicket(admitted=True)
            why = f"no admission of job {job_id} is recorded (state {row.state if row else 'not queued'})"
            audit(session, "system:workflow", "job.admission_signal_refused", "job", job_id, {"reason": why})
            session.commit()
            return AdmissionTicket(admitted=False, reason=why)

    @activity.defn(name="release_admission")
    async def release_admission(self, job_id: str) -> None:
        await asyncio.to_thread(self._release_and_pass, job_id)
        await notify_admitted(self._session, self._client)

    def _release_and_pass(self, job_id: str) -> None:
        with self._session() as session:
            bound_job(session, job_id)
            if admission.release(session, job_id):
                admission.admit_pass(session)
            session.commit()
