"""Answers of the job routes: a job (``activities.jobs.jobs.to_dict``), its list, submission,
cancel and log lines."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from api.schemas.base import Answer, NextCursor, Total
from workflows.contracts import JobStatus, JobTarget


class JobOutput(Answer):
    name: str = Field(description="path of the file, relative to the job's output directory")
    size: int
    sha256: str
    url: str = Field(description="where to download it (GET, same credentials)")


class ProviderTraining(Answer):
    """The cloud provider's training of a job, as last confirmed (a verified webhook or a poll)."""
    provider: str
    training_id: str | None
    status: str = Field(description="the provider's own status (replicate: starting, processing, succeeded, ...)")
    credential_source: str | None = Field(description="which credential created it: user (the submitter's own) or "
                                                      "global; never the value")
    output: dict[str, Any] | None = Field(description="what the provider reported as the training's output "
                                                      "(replicate: version and weights); anything else as value")
    error: str | None
    predict_time: float | None = Field(description="compute seconds the provider billed")
    created_at: datetime
    updated_at: datetime


class UploadProgress(Answer):
    bytes: int = Field(description="bytes the job's storage bucket holds")
    objects: int = Field(description="objects the job's storage bucket holds")


class Job(Answer):
    job_id: str
    status: JobStatus
    config_name: str
    target: JobTarget
    worker_labels: dict[str, str]
    gpu_count: int | None
    priority: int | None
    owner: str = Field(description="the submitter's username")
    user_id: str
    idempotency_key: str | None
    attempt: int = Field(description="which try this is (0 before the first)")
    max_attempts: int
    agent_id: str | None
    agent_name: str | None
    hardware_type: str | None = Field(description="of the agent that claimed the latest attempt")
    queue_reason: str | None = Field(description="why it waits, while it does")
    progress: dict[str, Any] | None = Field(description="what the training process last reported (free-form)")
    upload_progress: UploadProgress = Field(description="what it stored through the S3-compatible storage endpoint")
    error: str | None
    team_id: str | None
    org_id: str | None
    cost_estimate_usd: float | None
    cost_usd: float | None = Field(description="actual, once finished")
    gpu_hours: float | None = Field(description="actual, once finished")
    warnings: list[str]
    outputs: list[JobOutput]
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobDetail(Job):
    """``GET /api/cloud/jobs/{job_id}``: the job, and for a job on a cloud provider its training."""
    provider_training: ProviderTraining | None = Field(description="null unless the job runs on a cloud provider")


class JobPage(Answer):
    jobs: list[Job]
    total: Total
    next_cursor: NextCursor


class Submitted(Answer):
    job_id: str
    status: JobStatus
    idempotent_replay: bool = Field(description="true when the idempotency key was seen: the job it made")
    job: Job


class CancelRequested(Answer):
    job_id: str
    cancel_requested: Literal[True]


class LogLine(Answer):
    id: int = Field(description="pass the last one as `after` to read on")
    attempt: int
    seq: int
    line: str


class Logs(Answer):
    job_id: str
    lines: list[LogLine]
    next_after: int = Field(description="the `after` of the next read")
