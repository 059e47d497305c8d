"""Claims: an agent asks to run an attempt it received from its pool's task queue, and reports on it.

The task an agent polls carries only a job id and an attempt number, and anyone who can reach the GPU
namespace can put a task on a pool queue. So the claim is where authority is checked, against the
database only: the job's open dispatch must include that attempt and target the agent's own pool, no
other agent may have claimed the attempt, a newer attempt must not exist, and a draining agent takes
nothing. Only then does the agent get the attempt's command, environment and frozen config. Every
later report (logs, progress, outputs, the exit) must come from the agent that claimed the attempt,
while it is still the job's latest one.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from activities.audit.trail import audit
from activities.db.models import Job, Worker, utcnow
from activities.db.models_dispatch import JobAttempt, JobDispatch
from activities.errors import Conflict, DomainError, Forbidden, Gone, NotFound
from activities.governance import cost
from workflows.contracts import TERMINAL_STATUSES, ClaimCheck, ConfirmedClaim, OutputFile


def _job(session: Session, job_id: str) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"job {job_id!r} not found")
    return job


def _refuse(session: Session, worker: Worker, job_id: str, attempt: int, error: DomainError) -> DomainError:
    audit(session, f"worker:{worker.name}", "job.claim_refused", "job", job_id,
          {"attempt": attempt, "reason": error.detail, "agent_id": worker.id})
    return error


def claim(session: Session, job_id: str, attempt: int, worker: Worker, hourly_rates: dict[str, float] | None
          ) -> tuple[JobAttempt, Job]:
    """Record that ``worker`` runs ``attempt`` of the job, or raise (a refusal is audited; the caller
    commits either way)."""
    job = session.get(Job, job_id)
    if job is None:
        raise _refuse(session, worker, job_id, attempt, NotFound(f"job {job_id!r} not found"))
    dispatch = session.get(JobDispatch, (job_id, job.dispatch_seq)) if job.dispatch_seq else None
    refusal = _claim_refusal(session, job, dispatch, attempt, worker)
    if refusal is not None:
        raise _refuse(session, worker, job_id, attempt, refusal)
    existing = session.get(JobAttempt, (job_id, attempt))
    if existing is not None:  # the same agent asking again (its first answer was lost)
        return existing, job
    assert dispatch is not None
    row = JobAttempt(job_id=job_id, attempt=attempt, dispatch_seq=dispatch.seq, task_queue=dispatch.task_queue,
                     agent_id=worker.id, agent_name=worker.name, hardware_type=worker.hardware_type)
    session.add(row)
    job.attempt, job.agent_id, job.agent_name = attempt, worker.id, worker.name
    job.hardware_type = worker.hardware_type
    rate = cost.hourly_rate(worker.hardware_type, hourly_rates)
    if rate is not None:  # the actual cost is billed at the rate of the hardware that really runs it
        job.hourly_rate_usd = rate
    session.add(job)
    worker.current_job_id, worker.state = job_id, "busy"
    worker.unhealthy_since = worker.unhealthy_reason = None  # it polls: whatever made it look silent is over
    session.add(worker)
    audit(session, f"worker:{worker.name}", "job.claimed", "job", job_id,
          {"attempt": attempt, "agent_id": worker.id, "hardware_type": worker.hardware_type})
    return row, job


def _claim_refusal(session: Session, job: Job, dispatch: JobDispatch | None, attempt: int,
                   worker: Worker) -> DomainError | None:
    if job.status in TERMINAL_STATUSES:
        return Gone(f"job {job.id} is already {job.status}")
    if dispatch is None or dispatch.state != "open":
        return Conflict(f"job {job.id} has no attempt dispatched now")
    if not dispatch.first_attempt <= attempt <= dispatch.last_attempt:
        return Conflict(f"attempt {attempt} of job {job.id} was not dispatched (dispatch {dispatch.seq} allows "
                        f"attempts {dispatch.first_attempt}-{dispatch.last_attempt})")
    if worker.task_queue != dispatch.task_queue:
        return Forbidden(f"job {job.id} attempt {attempt} was dispatched to another pool than agent {worker.name}'s")
    existing = session.get(JobAttempt, (job.id, attempt))
    if existing is not None and existing.agent_id != worker.id:
        return Conflict(f"job {job.id} attempt {attempt} was already claimed by agent {existing.agent_name}")
    if existing is None and attempt <= job.attempt:
        return Conflict(f"attempt {attempt} of job {job.id} is stale (attempt {job.attempt} exists)")
    if existing is None and worker.draining:
        return Conflict(f"agent {worker.name} is draining and takes no new jobs")
    return None


def assignment(job: Job, row: JobAttempt, storage_env: dict[str, str] | None = None) -> dict[str, Any]:
    """What the claiming agent runs: the config frozen at evaluation, its environment completed with
    the job's storage credential (over anything the config set under those names)."""
    config = dict(job.frozen_config or {})
    if storage_env:
        config["env"] = {**(config.get("env") or {}), **storage_env}
    return {"job_id": job.id, "attempt": row.attempt, "owner_name": job.owner_name, "config": config,
            "dispatch": row.dispatch_seq}


def reporting_attempt(session: Session, job_id: str, attempt: int, worker: Worker) -> tuple[Job, JobAttempt]:
    """The attempt a report is about, if ``worker`` claimed it and it is still the job's latest."""
    job = _job(session, job_id)
    if job.status in TERMINAL_STATUSES:
        raise Conflict(f"job {job_id} is already {job.status}")
    row = session.get(JobAttempt, (job_id, attempt))
    if row is None or row.agent_id != worker.id:
        raise Conflict(f"agent {worker.name} did not claim attempt {attempt} of job {job_id}")
    if attempt != job.attempt:
        raise Conflict(f"attempt {attempt} of job {job_id} is stale (current attempt is {job.attempt})")
    if row.end is not None:
        raise Conflict(f"attempt {attempt} of job {job_id} already ended ({row.end})")
    return job, row


def record_output(session: Session, row: JobAttempt, output: OutputFile) -> None:
    outputs = [o for o in row.outputs if o.get("name") != output.name]
    row.outputs = [*outputs, output.model_dump()]
    session.add(row)


def end(session: Session, job_id: str, attempt: int, worker: Worker, how: str, exit_code: int | None) -> JobAttempt:
    """The claiming agent's own end of the attempt: ``exited`` with its code, or ``released`` (handed
    back before it finished, e.g. on shutdown: not counted as a lost agent)."""
    _, row = reporting_attempt(session, job_id, attempt, worker)
    row.end, row.exit_code, row.ended_at = how, exit_code, utcnow()
    session.add(row)
    if worker.current_job_id == job_id:
        worker.current_job_id, worker.state = None, "idle"
        session.add(worker)
    audit(session, f"worker:{worker.name}", f"job.attempt_{how}", "job", job_id,
          {"attempt": attempt, "exit_code": exit_code})
    return row


def confirm(session: Session, check: ClaimCheck) -> ConfirmedClaim:
    """The job workflow's check of an ``agent_started`` signal: is there such a claim? (Audited when not.)"""
    row = session.get(JobAttempt, (check.job_id, check.attempt))
    if row is None or row.agent_id != check.agent_id:
        why = f"no claim of attempt {check.attempt} by agent {check.agent_id} is recorded"
        audit(session, "system:workflow", "job.claim_signal_refused", "job", check.job_id,
              {"attempt": check.attempt, "agent_id": check.agent_id, "reason": why})
        return ConfirmedClaim(confirmed=False, reason=why)
    return ConfirmedClaim(confirmed=True, attempt=row.attempt, agent_id=row.agent_id, agent_name=row.agent_name)


def attempts_of(session: Session, job_id: str, dispatch_seq: int) -> list[JobAttempt]:
    return list(session.exec(select(JobAttempt).where(JobAttempt.job_id == job_id,
                                                      JobAttempt.dispatch_seq == dispatch_seq)
                             .order_by(JobAttempt.attempt)))
