"""What a verified caller may do with a bucket.

- A job credential: read, write, list and delete in its own job's bucket while the job is not
  finished (``TERMINAL_STATUSES``); anything else is ``AccessDenied``.
- A personal API key: read (GET, HEAD, list) the buckets of the jobs its owner may view, by the same
  own-vs-all rule as ``GET /api/cloud/jobs/{id}`` (``Principal.may_see``); writes are refused: what a
  job stored is its record, and nothing in the permission model lets a person rewrite it.
A bucket the caller may not see answers ``AccessDenied`` whether or not its job exists, so buckets
cannot be probed for job ids.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, or_, select

from activities.db.models import Job
from activities.db.models_storage import StorageCredential
from activities.errors import StorageError
from activities.storage.credentials import Caller
from workflows.contracts import TERMINAL_STATUSES

MAX_BUCKETS = 10000


def denied(message: str = "Access Denied") -> StorageError:
    return StorageError("AccessDenied", message, 403)


def check_caller(caller: Caller) -> None:
    """Refusals known from the credential alone (after its signature has been verified)."""
    if caller.refusal:
        raise denied(f"Access Denied: {caller.refusal}")


def authorize(session: Session, caller: Caller, bucket: str, write: bool) -> Job:
    """The bucket's job, if ``caller`` may read (or, with ``write``, change) the bucket."""
    check_caller(caller)
    job = session.get(Job, bucket)
    if caller.job_id is not None:
        if caller.job_id != bucket or job is None:
            raise denied("Access Denied: this credential serves only its own job's bucket")
        if job.status in TERMINAL_STATUSES:
            raise denied(f"Access Denied: job {job.id} has finished ({job.status}); its upload credential "
                         "no longer works")
        return job
    principal = caller.principal
    if principal is None or job is None or not principal.may_see(job.owner_id):
        raise denied()
    if write:
        raise denied("Access Denied: personal API keys may read job buckets, not change them")
    return job


def visible_buckets(session: Session, caller: Caller) -> list[tuple[str, datetime]]:
    """ListBuckets: (name, creation date) of the buckets the caller may read that hold something or
    belong to a job that was given an upload credential, oldest first."""
    check_caller(caller)
    if caller.job_id is not None:
        job = session.get(Job, caller.job_id)
        return [] if job is None or job.status in TERMINAL_STATUSES else [(job.id, job.created_at)]
    principal = caller.principal
    if principal is None or not (principal.has("job.view.all") or principal.has("job.view.own")):
        return []
    query = select(Job.id, Job.created_at).where(or_(col(Job.upload_objects) > 0,
                                                     col(Job.id).in_(select(StorageCredential.job_id))))
    if not principal.has("job.view.all"):
        query = query.where(Job.owner_id == principal.user_id)
    return [(row[0], row[1]) for row in session.exec(query.order_by(col(Job.created_at), col(Job.id))
                                                     .limit(MAX_BUCKETS))]
