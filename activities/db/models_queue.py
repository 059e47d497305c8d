"""Admission: the queue of jobs waiting for a concurrency slot, and the queue's limits."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from activities.db.models import utcnow


class QueueSettings(SQLModel, table=True):
    """One row (id 1): global and per-user concurrency limits; None = unlimited."""
    id: int = Field(default=1, primary_key=True)
    max_concurrent: int | None = None
    user_max_concurrent: int | None = None
    seq: int = 0  # one counter for enqueue, admit and release events (their exact order)
    virtual_time: float = 0.0  # fair-share clock: the fair tag of the latest admitted job
    updated_at: datetime = Field(default_factory=utcnow)
    updated_by: str | None = None


class Admission(SQLModel, table=True):
    """A job's place in the queue. A slot is held from admission until release; ``seq`` numbers
    (one counter for enqueue, admit and release) give the exact order of events."""
    job_id: str = Field(primary_key=True)
    user_id: str = Field(index=True)
    username: str
    level: str | None = None
    team_id: str | None = Field(default=None, index=True)
    team_slug: str | None = None
    org_id: str | None = Field(default=None, index=True)
    org_slug: str | None = None
    priority: int = 0  # from the submitter's level (admin 100 ... viewer 10) or an admin override
    priority_override: int | None = None
    bypass_queue: bool = False  # the submitter holds job.bypass.queue: ahead of the line, never past a limit
    fair_tag: float = 0.0  # start-time fair queueing: max(clock, the user's last tag) + 1 at enqueue
    state: str = Field(default="waiting", index=True)  # waiting | admitted | released
    enqueued_seq: int = Field(default=0, index=True)
    admit_seq: int | None = None
    release_seq: int | None = None
    enqueued_at: datetime = Field(default_factory=utcnow)
    admitted_at: datetime | None = None
    released_at: datetime | None = None
    notified: bool = False  # the workflow was signalled about its admission
