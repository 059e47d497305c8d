"""The database half of the reconciler: finish a job whose workflow is gone, free what it held.

A workflow terminated from outside (an operator in the Web UI, Temporal's history limit, a reset)
runs none of its own clean-up. ``finish_orphan`` does it in one transaction: the row gets its
terminal status and Temporal's reason, the admission slot (or place in line) is given back, a
pending approval request is closed, open dispatches are closed so no agent can claim them, and an
event and an audit entry say what happened. ``stale_admissions`` finds slots still held by jobs that
already ended.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from activities.audit.trail import audit
from activities.capacity import admission
from activities.db.models import Job, JobEvent, as_utc, utcnow
from activities.db.models_approvals import ApprovalRequest
from activities.db.models_dispatch import JobDispatch
from activities.db.models_queue import Admission
from activities.governance.approvals import close_request
from activities.jobs.jobs import apply_transition
from workflows.contracts import TERMINAL_STATUSES, ApprovalOutcome, Transition


def open_jobs(session: Session, older_than: datetime) -> list[str]:
    """Jobs not yet ended that were submitted before ``older_than``, oldest first."""
    rows = session.exec(select(Job.id).where(col(Job.status).not_in(TERMINAL_STATUSES),
                                             Job.created_at < older_than).order_by(Job.created_at))
    return list(rows)


def finish_orphan(session: Session, job_id: str, status: str, reason: str, source: str) -> bool:
    """End ``job_id`` as ``status`` with ``reason``; False when it had already ended (nothing done)."""
    job = session.get(Job, job_id)
    if job is None or job.status in TERMINAL_STATUSES:
        return False
    seq = session.exec(select(func.max(JobEvent.transition_seq)).where(JobEvent.job_id == job_id)).one() or 0
    apply_transition(session, Transition(job_id=job_id, seq=seq + 1, status=status, attempt=job.attempt,
                                         agent_id=job.agent_id, agent_name=job.agent_name, error=reason))
    admission.release(session, job_id)
    for request in session.exec(select(ApprovalRequest).where(ApprovalRequest.job_id == job_id,
                                                              ApprovalRequest.status == "pending")):
        close_request(session, ApprovalOutcome(request_id=request.id, job_id=job_id, status="cancelled",
                                               channel="system", comment=f"the job ended: {reason}"))
    for dispatch in session.exec(select(JobDispatch).where(JobDispatch.job_id == job_id, JobDispatch.state == "open")):
        dispatch.state, dispatch.outcome, dispatch.closed_at = "closed", "reconciled", utcnow()
        session.add(dispatch)
    audit(session, "system:reconciler", "job.reconciled", "job", job_id,
          {"status": status, "reason": reason, "workflow": source})
    return True


def stale_admissions(session: Session) -> list[str]:
    """Give back the slots (and places in line) of jobs that have ended; their ids."""
    rows = session.exec(select(Admission).join(Job, col(Job.id) == col(Admission.job_id))
                        .where(Admission.state != "released", col(Job.status).in_(TERMINAL_STATUSES)))
    freed = []
    for row in list(rows):
        if admission.release(session, row.job_id):
            freed.append(row.job_id)
            audit(session, "system:reconciler", "admission.released", "job", row.job_id,
                  {"reason": "the job had ended without giving its slot back"})
    return freed


def dispatch_count(session: Session, job_id: str) -> int:
    job = session.get(Job, job_id)
    return job.dispatch_seq if job is not None else 0



def created_at(session: Session, job_id: str) -> datetime | None:
    job = session.get(Job, job_id)
    return as_utc(job.created_at) if job is not None else None
