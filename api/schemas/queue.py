"""Answers of the admission queue routes: the line and the jobs holding slots
(``activities.capacity.queue_view``), counts, one job's place, the limits and priority overrides."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from api.schemas.base import Answer, NextCursor, Total
from api.schemas.jobs import JobStatus

QueueState = Literal["waiting", "running", "waiting_for_agent", "released"]


class QueueEntry(Answer):
    job_id: str
    user: str
    user_id: str
    team: str | None = Field(description="the team's slug")
    org: str | None = Field(description="the organization's slug")
    priority: int = Field(description="effective: the override if set, else the submitter's level's")
    priority_override: int | None
    state: QueueState
    position: int | None = Field(description="1 = next in line; null once admitted")
    reason: str | None = Field(description="why it waits")
    enqueued_at: datetime
    admitted_at: datetime | None


class QueuePage(Answer):
    waiting: list[QueueEntry] = Field(description="the line, in admission order (paged)")
    running: list[QueueEntry] = Field(description="admitted and on an agent")
    waiting_for_agent: list[QueueEntry] = Field(description="admitted, not yet on an agent")
    total: Total
    next_cursor: NextCursor


class MyQueue(Answer):
    waiting: list[QueueEntry]
    running: list[QueueEntry]
    waiting_for_agent: list[QueueEntry]
    waiting_count: int
    running_count: int
    waiting_for_agent_count: int


class QueueStats(Answer):
    running: int = Field(description="jobs holding a slot")
    waiting: int = Field(description="jobs in the line")
    waiting_for_agent: int = Field(description="of the running ones, those not yet on an agent")
    max_concurrent: int | None
    user_max_concurrent: int | None
    running_by_user: dict[str, int] = Field(description="slots held per username")


class Position(Answer):
    job_id: str
    status: JobStatus
    priority: int
    state: QueueState
    position: int | None
    reason: str | None


class NotQueued(Answer):
    job_id: str
    state: Literal["not_queued"]
    status: JobStatus
    position: None
    reason: str | None = Field(description="the job's queue_reason")


class Limits(Answer):
    max_concurrent: int | None = Field(description="jobs admitted at once; null: unlimited")
    user_max_concurrent: int | None = Field(description="per user; null: unlimited")


class LimitsRead(Limits):
    updated_at: datetime
    updated_by: str | None


class PriorityChanged(Answer):
    job_id: str
    priority: int = Field(description="the effective priority now")
