"""Payloads of the job workflow and its control-plane activities (control namespace).

The workflow input names the job; everything that decides something (who owns it, what it runs,
where, which limits apply) is read from the database by the evaluation activity, not from here.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from workflows.contracts.names import JobStatus, JobTarget

if TYPE_CHECKING:
    from workflows.contracts.continuation import JobResume


class TrainingConfigSpec(BaseModel):
    """A resolved training config (frozen on the job at evaluation; agents get it from the API)."""
    name: str
    args: dict = Field(default_factory=dict)
    command: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    gpu_count: int = 1
    hardware_type: str | None = None
    estimated_hours: float | None = None


class JobSubmission(BaseModel):
    """Workflow input. Only ``job_id`` is authoritative: the evaluation reads the submission the API
    recorded for that id; the other fields are kept for the Web UI and older histories."""
    job_id: str
    owner_id: str
    owner_name: str
    config_name: str
    target: JobTarget = "auto"
    worker_labels: dict[str, str] = Field(default_factory=dict)
    gpu_count: int | None = None
    priority: int | None = None
    idempotency_key: str | None = None
    team: str | None = None  # slug of the team the job is charged to (default: the submitter's first team)
    request_hash: str = ""
    max_attempts: int = 3
    heartbeat_timeout_seconds: float = 120.0
    placement_recheck_seconds: float = 15.0
    resume: JobResume | None = None  # set by the job's own continue-as-new: where the previous run was


class ApprovalRequirement(BaseModel):
    """The approval rule that matched a submission."""
    rule_id: str | None
    rule_name: str
    reason: str
    required_level: str
    cost_estimate_usd: float | None = None
    timeout_seconds: float = 24 * 3600.0


class JobScope(BaseModel):
    user_id: str
    username: str
    level: str | None = None
    priority: int = 0  # queue priority: the level's (admin 100 ... viewer 10) or the submitter's override
    team_id: str | None = None
    team_slug: str | None = None
    org_id: str | None = None
    org_slug: str | None = None
    warnings: list[str] = Field(default_factory=list)


class RunLimits(BaseModel):
    """How long the control plane waits for what, from the worker host's settings."""
    max_attempts: int = 3
    heartbeat_timeout_seconds: float = 120.0
    placement_recheck_seconds: float = 15.0
    dispatch_start_timeout_seconds: float = 600.0
    max_history_events: int | None = None  # continue as new past this many events (besides Temporal's hint)


class EvaluatedJob(BaseModel):
    """Result of evaluating a submission against the database: the frozen config the job will run,
    its owner and placement wishes as the API recorded them, and every policy's verdict."""
    config: TrainingConfigSpec
    gpu_count: int
    cost_estimate_usd: float | None = None
    approval: ApprovalRequirement | None = None
    scope: JobScope | None = None  # who the job is charged to and its queue priority
    owner_name: str | None = None  # (fields below: None in histories recorded before the evaluation read them)
    config_name: str | None = None
    target: str | None = None
    limits: RunLimits | None = None
    nexus_endpoint: str | None = None  # how this deployment's job workflows reach the GPU namespace


class AdmissionRequest(BaseModel):
    job_id: str
    scope: JobScope


class AdmissionTicket(BaseModel):
    """Result of asking for (or confirming) a concurrency slot."""
    admitted: bool
    reason: str | None = None


class PlacementRequest(BaseModel):
    """Where may the job run now? The activity reads the job's selector from the database; the
    selector fields here only serve histories recorded before it did."""
    job_id: str
    target: JobTarget = "auto"
    worker_labels: dict[str, str] = Field(default_factory=dict)
    gpu_count: int = 1
    # agent id -> when it was lost on this job: skipped unless it registered again since
    excluded_agents: dict[str, datetime] = Field(default_factory=dict)


class Placement(BaseModel):
    """Where to dispatch, or why the job must wait."""
    task_queue: str | None = None
    is_local: bool = False
    agent_count: int = 0
    hardware_type: str | None = None
    reason: str | None = None


class OutputFile(BaseModel):
    name: str
    size: int
    sha256: str


class Transition(BaseModel):
    """Activity input: one status change of a job, written with its event and audit entry."""
    job_id: str
    seq: int  # per-workflow transition counter: a retried activity never writes twice
    status: JobStatus
    attempt: int = 0
    agent_id: str | None = None
    agent_name: str | None = None
    queue_reason: str | None = None
    error: str | None = None
    outputs: list[OutputFile] | None = None
    message: str | None = None


class JobResult(BaseModel):
    job_id: str
    status: JobStatus
    attempt: int
    agent_name: str | None = None
    error: str | None = None
    outputs: list[OutputFile] = Field(default_factory=list)


class AgentStarted(BaseModel):
    """Signal from the API: an agent claimed an attempt of the job. A hint only: the workflow
    confirms the claim in the database before it records the job as running."""
    agent_id: str
    agent_name: str
    attempt: int


# ---- before the GPU plane: the task carried the config and the agent's answer was trusted ------------

class TrainingAssignment(BaseModel):
    """Input of ``run_training`` in histories recorded before the GPU plane (the agents now receive
    a ``TrainingTask`` and fetch the config from the API)."""
    job_id: str
    attempt: int
    owner_name: str
    config: TrainingConfigSpec


class ReconcileReport(BaseModel):
    """What one reconciler run did."""
    checked: int = 0  # jobs not yet ended whose workflow was looked at
    finished: list[str] = Field(default_factory=list)  # jobs whose workflow was gone: ended in the database
    slots_freed: list[str] = Field(default_factory=list)  # slots still held by ended jobs, given back


class TrainingOutcome(BaseModel):
    exit_code: int
    agent_id: str
    agent_name: str
    outputs: list[OutputFile] = Field(default_factory=list)
    duration_seconds: float = 0.0
