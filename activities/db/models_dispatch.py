"""Dispatches and attempts: what the control plane allowed to run where, and who claimed it.

A dispatch (one per placement of a job) allows a range of attempt numbers to run on one pool's task
queue. An agent of that pool claims an attempt through the API; the claim is the only way to learn
what to run. Each attempt ends with the claiming agent's own report (exited with a code, or released
back), or not at all when the agent was lost.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from activities.db.models import utcnow


class JobDispatch(SQLModel, table=True):
    job_id: str = Field(primary_key=True)
    seq: int = Field(primary_key=True)
    task_queue: str
    first_attempt: int
    last_attempt: int
    state: str = "open"  # open | closed
    outcome: str | None = None  # completed | failed | lost | not_started (set when settled)
    opened_at: datetime = Field(default_factory=utcnow)
    closed_at: datetime | None = None


class JobAttempt(SQLModel, table=True):
    job_id: str = Field(primary_key=True)
    attempt: int = Field(primary_key=True)
    dispatch_seq: int
    task_queue: str
    agent_id: str = Field(index=True)
    agent_name: str
    hardware_type: str | None = None
    claimed_at: datetime = Field(default_factory=utcnow)
    ended_at: datetime | None = None
    end: str | None = None  # exited | released | lost
    exit_code: int | None = None
    outputs: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
