"""Answers of the routes GPU agents call with X-Worker-Token: registration, heartbeat, the claim of
an attempt (what to run, ``activities.capacity.claims.assignment``), reports and uploads."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from api.schemas.base import Answer
from api.schemas.workers import Worker, WorkerStatus


class TemporalAccess(Answer):
    """How an agent reaches Temporal: the GPU namespace only (TLS material stays on the agent host)."""
    address: str
    namespace: str
    tls: bool


class Registered(Worker):
    heartbeat_interval_seconds: float
    heartbeat_timeout_seconds: float
    temporal: TemporalAccess


class HeartbeatAnswer(Answer):
    status: WorkerStatus
    draining: bool = Field(description="true: finish the current job, then stop taking work")
    task_queue: str | None
    heartbeat_interval_seconds: float


class Assignment(Answer):
    job_id: str
    attempt: int
    owner_name: str
    config: dict[str, Any] = Field(description="the training config frozen at evaluation (free-form)")
    dispatch: int = Field(description="the dispatch the attempt belongs to")


class Accepted(Answer):
    accepted: Literal[True]


class OutputStored(Answer):
    name: str
    size: int
    sha256: str = Field(description="of the bytes as stored")


class Disconnected(Answer):
    ok: Literal[True]
