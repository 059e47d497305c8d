"""Answers of the agent administration routes: an agent (``activities.capacity.workers.to_dict``),
the list, creation (with its token, shown once), drain and token rotation."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from api.schemas.base import Answer, NextCursor, Total

WorkerStatus = Literal["connecting", "idle", "busy", "draining", "offline"]
WorkerType = Literal["persistent", "ephemeral"]


class Worker(Answer):
    id: str
    worker_id: str = Field(description="the same as id")
    name: str
    status: WorkerStatus = Field(description="computed from the last heartbeat")
    draining: bool
    worker_type: WorkerType
    local: bool
    gpu_count: int
    gpu_name: str | None
    gpu_vram_gb: float | None
    accelerator_type: str | None
    hardware_type: str | None = Field(description="normalised, e.g. a100-80gb, h200, cpu")
    healthy: bool
    unhealthy_reason: str | None
    unhealthy_since: datetime | None
    hostname: str | None
    labels: dict[str, str]
    task_queue: str | None = Field(description="the pool's task queue")
    current_job_id: str | None
    last_heartbeat: datetime | None
    registered_at: datetime | None
    created_at: datetime


class WorkerPage(Answer):
    workers: list[Worker] = Field(description="by name")
    total: Total
    next_cursor: NextCursor


class WorkerCreated(Answer):
    worker_id: str
    token: str = Field(description="the agent's X-Worker-Token, shown only in this answer")
    name: str
    worker_type: WorkerType
    labels: dict[str, str]
    local: bool


class Drained(Answer):
    worker_id: str
    draining: bool
    status: WorkerStatus


class TokenRotated(Answer):
    worker_id: str
    token: str = Field(description="the new X-Worker-Token, shown only in this answer; the old one stops working")
