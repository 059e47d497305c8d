"""The job read model: rows written by workflow activities (transitions) and agent reports."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from activities.db.models_providers import ProviderTraining
from activities.db.models import Job, JobEvent, JobLogLine, as_utc, utcnow
from activities.errors import Conflict, Forbidden, InvalidInput, NotFound
from activities.identity.principals import Principal
from activities.paging import Page, PageRequest, keyset
from activities.audit.trail import audit, emit_event
from workflows.contracts import ALL_STATUSES, TERMINAL_STATUSES, JobSubmission, Transition

EVENT_FOR_STATUS = {"pending": "job.submitted", "queued": "job.queued", "running": "job.started",
                    "completed": "job.completed", "failed": "job.failed", "cancelled": "job.cancelled"}


def to_dict(job: Job, base_url: str = "") -> dict[str, Any]:
    return {
        "job_id": job.id, "status": job.status, "config_name": job.config_name, "target": job.target,
        "worker_labels": job.worker_labels, "gpu_count": job.gpu_count, "priority": job.priority,
        "owner": job.owner_name, "user_id": job.owner_id, "idempotency_key": job.idempotency_key,
        "attempt": job.attempt, "max_attempts": job.max_attempts, "agent_id": job.agent_id,
        "agent_name": job.agent_name, "hardware_type": job.hardware_type, "queue_reason": job.queue_reason,
        "progress": job.progress,
        "upload_progress": {"bytes": job.upload_bytes or 0, "objects": job.upload_objects or 0},
        "error": job.error, "team_id": job.team_id, "org_id": job.org_id,
        "cost_estimate_usd": job.cost_estimate_usd, "cost_usd": job.cost_usd, "gpu_hours": job.gpu_hours,
        "warnings": job.warnings or [],
        "outputs": [{**o, "url": f"{base_url}/api/cloud/jobs/{quote(job.id, safe='')}/outputs/{quote(o['name'])}"}
                    for o in job.outputs],
        "created_at": job.created_at, "updated_at": job.updated_at, "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


def find(session: Session, job_id: str) -> Job | None:
    return session.get(Job, job_id)


def get(session: Session, job_id: str) -> Job:
    job = find(session, job_id)
    if job is None:
        raise NotFound(f"job {job_id!r} not found")
    return job


def visible_jobs(session: Session, principal: Principal, status: str | None = None, user: str | None = None,
                 config: str | None = None, target: str | None = None,
                 page: PageRequest = PageRequest()) -> Page[Job]:
    """The jobs ``principal`` may list: everyone's with ``job.view.all``, else only their own (a
    ``user`` filter naming someone else finds nothing), filtered and paged as ``list_jobs``."""
    if status is not None and status not in ALL_STATUSES:
        raise InvalidInput(f"unknown status {status!r}; one of {', '.join(ALL_STATUSES)}")
    if not principal.has("job.view.all"):
        if not principal.has("job.view.own"):
            raise Forbidden("missing permission 'job.view.own'")
        if user not in (None, principal.username, principal.user_id):
            return Page([], 0, None)
        user = principal.user_id
    return list_jobs(session, status, user, config, page, target)


def list_jobs(session: Session, status: str | None = None, user: str | None = None, config: str | None = None,
              page: PageRequest = PageRequest(), target: str | None = None) -> Page[Job]:
    """Newest first, a page at a time (keyset on the submission time)."""
    query = select(Job)
    if status:
        query = query.where(Job.status == status)
    if target:
        query = query.where(Job.target == target)
    if user:
        query = query.where((Job.owner_name == user) | (Job.owner_id == user))
    if config:
        query = query.where(Job.config_name == config)
    return keyset(session, query, [(col(Job.created_at), True), (col(Job.id), True)], page)


def create_pending(session: Session, sub: JobSubmission, ip: str | None = None) -> tuple[Job, bool]:
    """Record an authenticated submission before its workflow starts (the evaluation reads it from
    here); an existing row with the same id is an idempotent replay of the same request."""
    job = session.get(Job, sub.job_id)
    if job is not None:
        if job.request_hash != sub.request_hash:
            raise Conflict(f"idempotency_key {sub.idempotency_key!r} was already used for a different request "
                           f"(job {job.id})")
        return job, False
    job = Job(id=sub.job_id, owner_id=sub.owner_id, owner_name=sub.owner_name, config_name=sub.config_name,
              target=sub.target, worker_labels=sub.worker_labels, gpu_count=sub.gpu_count, priority=sub.priority,
              idempotency_key=sub.idempotency_key, request_hash=sub.request_hash, max_attempts=sub.max_attempts,
              team_slug=sub.team, charge_state="pending")
    session.add(job)
    emit_event(session, "job.submitted", job.id, "pending", {"config_name": sub.config_name, "owner": sub.owner_name},
               transition_seq=0)
    audit(session, sub.owner_name, "job.submitted", "job", job.id,
          {"config_name": sub.config_name, "target": sub.target}, ip=ip)
    return job, True


def note_estimates(job: Job, cost_usd: float | None, hourly_rate_usd: float | None, gpu_hours: float | None,
                   gpu_count: int) -> None:
    """The estimates the submission was checked with (the evaluation records its own, authoritative)."""
    job.cost_estimate_usd, job.hourly_rate_usd, job.gpu_hours_estimate = cost_usd, hourly_rate_usd, gpu_hours
    job.gpu_count = job.gpu_count or gpu_count


def fail_unstarted(session: Session, job_id: str, error: str) -> None:
    """A recorded submission whose workflow could not be started ends here, failed, with the reason."""
    job = session.get(Job, job_id)
    if job is None or job.status != "pending":
        return
    job.status, job.error, job.finished_at, job.charge_state = "failed", error, utcnow(), "refused"
    session.add(job)
    emit_event(session, "job.failed", job.id, "failed", {"error": error})
    audit(session, "system:api", "job.start_failed", "job", job.id, {"error": error})


def apply_transition(session: Session, t: Transition) -> Job:
    """Write one workflow transition with its event and audit entry; a retry of the same seq is a no-op."""
    job = session.get(Job, t.job_id)
    if job is None:
        raise NotFound(f"job {t.job_id!r} not found")
    already = session.exec(select(JobEvent.id).where(JobEvent.job_id == t.job_id,
                                                     JobEvent.transition_seq == t.seq)).first()
    if already is not None:
        return job
    now = utcnow()
    job.status, job.updated_at, job.queue_reason = t.status, now, t.queue_reason
    job.attempt = max(job.attempt, t.attempt)  # a claim may already have recorded a newer attempt
    if t.status == "queued":
        job.agent_id = job.agent_name = None
    if t.status == "running":
        job.agent_id, job.agent_name = t.agent_id, t.agent_name
        job.started_at = job.started_at or now
    if t.status in TERMINAL_STATUSES:
        job.finished_at = now
        if session.get(ProviderTraining, job.id) is None:  # a provider's job is charged its billed compute time
            _record_actual_use(job)
        if t.status == "completed" and job.progress is not None:
            job.progress = {**job.progress, "percent": 100.0}
    if t.error is not None:
        job.error = t.error
    if t.outputs is not None:
        job.outputs = [o.model_dump() for o in t.outputs]
    session.add(job)
    data = {"attempt": t.attempt, "agent_name": t.agent_name, "queue_reason": t.queue_reason, "error": t.error}
    emit_event(session, EVENT_FOR_STATUS.get(t.status, f"job.{t.status}"), job.id, t.status,
               {k: v for k, v in data.items() if v is not None}, transition_seq=t.seq)
    audit(session, "system:workflow", "job.status_changed", "job", job.id,
          {"status": t.status, "attempt": t.attempt, "agent": t.agent_name})
    return job


def _record_actual_use(job: Job) -> None:
    """GPU-hours and cost of the time the job actually ran (nothing if it never started)."""
    if job.started_at is None or job.finished_at is None:
        return
    job.gpu_hours = round(max(0.0, (as_utc(job.finished_at) - as_utc(job.started_at)).total_seconds()) / 3600.0 * (job.gpu_count or 1), 6)
    if job.hourly_rate_usd is not None:
        job.cost_usd = round(job.gpu_hours * job.hourly_rate_usd, 4)


def append_logs(session: Session, job_id: str, attempt: int, offset: int, lines: list[str]) -> None:
    if not lines:
        return
    rows = [{"job_id": job_id, "attempt": attempt, "seq": offset + i, "line": line[:8192], "created_at": utcnow()}
            for i, line in enumerate(lines)]
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(JobLogLine).values(rows).on_conflict_do_nothing(index_elements=["job_id", "attempt", "seq"])
    session.exec(stmt)  # type: ignore[call-overload]


def read_logs(session: Session, job_id: str, after_id: int = 0, limit: int = 1000,
              attempt: int | None = None) -> list[JobLogLine]:
    query = select(JobLogLine).where(JobLogLine.job_id == job_id, JobLogLine.id > after_id)
    if attempt is not None:
        query = query.where(JobLogLine.attempt == attempt)
    return list(session.exec(query.order_by(JobLogLine.id).limit(limit)))
