"""Which workflow may run a job's activities: its own.

Anyone who can reach the control namespace can schedule any registered activity, with any input, from
a workflow of their own. Temporal fills in who scheduled an activity task (the workflow id and run),
and nobody can forge that; so every activity that reads or changes one job checks that it was
scheduled by that job's workflow (id = job id) and, once the job's evaluation recorded its run, by
that very run. A refusal is audited and fails the activity for good.
"""

from __future__ import annotations

from sqlmodel import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.audit.trail import audit
from activities.db.models import Job

ERR_NOT_BOUND = "ActivityNotBound"


def bound_job(session: Session, job_id: str) -> Job:
    """The job row, when the running activity belongs to that job's workflow run; else an audited refusal
    (committed in ``session``, which must hold no other pending change)."""
    info = activity.info()
    job = session.get(Job, job_id)
    why = None
    if job is None:
        why = f"job {job_id!r} is not known"
    elif info.workflow_id != job_id:
        why = f"activity {info.activity_type} for job {job_id} was scheduled by workflow {info.workflow_id!r}"
    elif job.workflow_run_id and info.workflow_run_id != job.workflow_run_id:
        why = (f"activity {info.activity_type} for job {job_id} was scheduled by run {info.workflow_run_id}, "
               f"not by the run that evaluated the job")
    if why is None:
        assert job is not None
        return job
    refuse(session, job_id, why)
    raise AssertionError("unreachable")


def refuse(session: Session, job_id: str, why: str) -> None:
    """Audit the refusal, commit, and fail the activity for good."""
    info = activity.info()
    audit(session, f"workflow:{info.workflow_id}", "job.activity_refused", "job", job_id,
          {"activity": info.activity_type, "workflow_id": info.workflow_id, "run_id": info.workflow_run_id,
           "reason": why})
    session.commit()
    raise ApplicationError(f"refused: {why}", type=ERR_NOT_BOUND, non_retryable=True)
