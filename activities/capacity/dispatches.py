"""Dispatches: the control plane's record of what may run where, opened before the job crosses into
the GPU namespace and settled from the database when the GPU plane reports back.

Opening checks the job's own state (evaluated and charged, approved when a rule required it,
admitted, not finished), so nothing can be dispatched by asking. Settling trusts only the claims and
the claiming agent's own exit report; the GPU plane's report adds at most its error text and, to
fail sooner, its count of lost agents.
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select

from activities.audit.trail import audit
from activities.capacity import claims, workers
from activities.db.models import Job, Worker, as_utc, utcnow
from activities.db.models_approvals import ApprovalRequest
from activities.db.models_dispatch import JobDispatch
from activities.db.models_queue import Admission
from activities.errors import Conflict
from workflows.contracts import (
    TERMINAL_STATUSES, DispatchOpening, DispatchResult, DispatchTicket, OutputFile, SettledDispatch, SettleRequest,
)


def refusal(session: Session, job: Job) -> str | None:
    """Why the job may not run anywhere yet (agents or a cloud provider), or None."""
    if job.status in TERMINAL_STATUSES:
        return f"job {job.id} is already {job.status}"
    if job.charge_state != "charged" or job.evaluated_at is None:
        return f"job {job.id} was not accepted by its evaluation"
    if job.approval_requirement:
        request = session.exec(select(ApprovalRequest).where(ApprovalRequest.job_id == job.id)).first()
        if request is None or request.status != "approved":
            return f"job {job.id} needs an approval it does not have"
    admitted = session.get(Admission, job.id)
    if admitted is None or admitted.state != "admitted":
        return f"job {job.id} holds no admission slot"
    return None


def open_dispatch(session: Session, opening: DispatchOpening) -> DispatchTicket:
    """Allow attempts ``first_attempt``.. to run on the pool's queue (idempotent for a retried call)."""
    job = session.get(Job, opening.job_id)
    if job is None:
        raise Conflict(f"job {opening.job_id!r} not found")
    current = session.get(JobDispatch, (job.id, job.dispatch_seq)) if job.dispatch_seq else None
    if (current is not None and current.state == "open" and current.task_queue == opening.task_queue
            and current.first_attempt == opening.first_attempt):
        return DispatchTicket(dispatch=current.seq, first_attempt=current.first_attempt,
                              last_attempt=current.last_attempt)
    why = refusal(session, job)
    if why is not None:
        audit(session, "system:workflow", "job.dispatch_refused", "job", job.id, {"reason": why})
        raise Conflict(why)
    if current is not None and current.state == "open":
        _close(current, "lost")
        session.add(current)
    first = max(opening.first_attempt, job.attempt + 1)
    row = JobDispatch(job_id=job.id, seq=job.dispatch_seq + 1, task_queue=opening.task_queue, first_attempt=first,
                      last_attempt=first + max(1, opening.attempts) - 1)
    job.dispatch_seq = row.seq
    session.add(row)
    session.add(job)
    return DispatchTicket(dispatch=row.seq, first_attempt=row.first_attempt, last_attempt=row.last_attempt)


def _close(row: JobDispatch, outcome: str) -> None:
    row.state, row.outcome, row.closed_at = "closed", outcome, row.closed_at or utcnow()


def settle(session: Session, req: SettleRequest, timeout_s: float) -> SettledDispatch:
    """Close the dispatch; say how it ended from the claims and exit reports in the database."""
    row = session.get(JobDispatch, (req.job_id, req.dispatch))
    if row is None:
        return SettledDispatch(outcome="lost", error=f"dispatch {req.dispatch} of job {req.job_id} is unknown")
    reported = req.reported or DispatchResult(outcome="lost", attempt=0)
    attempts = claims.attempts_of(session, req.job_id, req.dispatch)
    lost = {a.agent_id: a.claimed_at for a in attempts if a.end is None}
    last = attempts[-1] if attempts else None
    settled = SettledDispatch(outcome="lost", attempt=last.attempt if last else 0,
                              agent_id=last.agent_id if last else None, agent_name=last.agent_name if last else None,
                              lost_agents=dict(lost), error=reported.error)
    if last is not None and last.end == "exited":
        settled.lost_agents.pop(last.agent_id, None)
        settled.lost_attempts = sum(1 for a in attempts[:-1] if a.end is None)
        if last.exit_code == 0:
            settled.outcome = "completed"
            _complete(session, req.job_id, [OutputFile(**o) for o in last.outputs])
        else:
            settled.outcome = "failed"
            settled.error = f"training process exited with code {last.exit_code}"
    else:
        settled.lost_attempts = max(len(lost), reported.lost)
        if reported.outcome == "not_started" and not attempts:
            settled.outcome = "not_started"
            _mark_silent(session, row, timeout_s)
        elif reported.outcome in ("finished", "failed") and (last is None or last.end is None):
            settled.lost_attempts = max(settled.lost_attempts, 1)  # the GPU plane says it ran; no agent said so
            settled.error = "the GPU plane reported an end that no claiming agent reported"
            audit(session, "system:workflow", "job.dispatch_report_refused", "job", req.job_id,
                  {"dispatch": req.dispatch, "reported": reported.model_dump()})
    for attempt in attempts:
        if attempt.end is None and (last is None or attempt is not last or settled.outcome != "completed"):
            attempt.end, attempt.ended_at = "lost", utcnow()
            session.add(attempt)
    _close(row, settled.outcome)
    session.add(row)
    return settled


def _complete(session: Session, job_id: str, outputs: list[OutputFile]) -> None:
    job = session.get(Job, job_id)
    if job is not None:
        job.outputs = [o.model_dump() for o in outputs]
        session.add(job)


def _mark_silent(session: Session, dispatch: JobDispatch, timeout_s: float) -> list[Worker]:
    """Agents of the pool that looked idle the whole time yet never started the attempt: unhealthy
    (left out of placement until they claim something or register again)."""
    now = utcnow()
    silent = [w for w in workers.list_all(session)
              if w.task_queue == dispatch.task_queue and workers.status_of(w, timeout_s, now) == "idle"
              and (w.registered_at is None or as_utc(w.registered_at) <= as_utc(dispatch.opened_at))]
    for w in silent:
        w.unhealthy_since = now
        w.unhealthy_reason = (f"left attempt(s) of job {dispatch.job_id} unstarted for "
                              f"{_seconds(now - as_utc(dispatch.opened_at))} while reporting idle")
        session.add(w)
        audit(session, "system:workflow", "worker.marked_unhealthy", "worker", w.id,
              {"job_id": dispatch.job_id, "reason": w.unhealthy_reason})
    return silent


def _seconds(delta: timedelta) -> str:
    return f"{max(0.0, delta.total_seconds()):.0f} s"

