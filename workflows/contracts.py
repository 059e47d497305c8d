"""Everything that crosses Temporal: payload models, queue names, ids, search attributes.

Workflow-safe: pure data and pure functions, no I/O. The GPU agent imports only this module
from the control plane.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field
from temporalio.common import SearchAttributeKey

# ---- task queues and names -------------------------------------------------------------

CONTROL_TASK_QUEUE = "simpletuner.control"
RUN_TRAINING_ACTIVITY = "run_training"
TRAINING_WORKFLOW = "TrainingJobWorkflow"
MAILBOX_WATCHER_WORKFLOW = "MailboxWatcherWorkflow"
MAILBOX_WATCHER_ID = "simpletuner-mailbox-watcher"  # one per namespace
MAILBOX_CHANGED_SIGNAL = "mailbox_config_changed"
ADMISSION_GRANTED_SIGNAL = "admission_granted"
AGENT_STARTED_SIGNAL = "agent_started"
AGENTS_CHANGED_SIGNAL = "agents_changed_signal"

JobStatus = Literal["pending", "pending_approval", "queued", "running", "completed", "failed", "cancelled"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
ALL_STATUSES: tuple[str, ...] = ("pending", "pending_approval", "queued", "running", "completed", "failed", "cancelled")
JobTarget = Literal["worker", "local", "auto"]

# Level names and priorities (viewer 10, researcher 20, lead 30, admin 100).
LEVEL_PRIORITY: dict[str, int] = {"viewer": 10, "researcher": 20, "lead": 30, "admin": 100}
ApprovalStatus = Literal["pending", "approved", "rejected", "expired", "cancelled"]

# Error types raised by activities and read by the workflow.
ERR_TRAINING_FAILED = "TrainingProcessFailed"  # the process exited non-zero: job fails, no retry
ERR_AGENT_UNAVAILABLE = "AgentUnavailable"  # agent refused or handed back the task: retry elsewhere
ERR_INVALID_SUBMISSION = "InvalidSubmission"  # evaluation rejected the job
ERR_APPROVAL_NOT_PENDING = "ApprovalNotPending"  # the request was already decided, expired or cancelled
ERR_APPROVAL_FORBIDDEN = "ApprovalForbidden"  # the caller may not decide this request
APPROVAL_DECISION_UPDATE = "decide_approval"


def pool_task_queue(labels: dict[str, str], gpu_count: int, local: bool) -> str:
    """Agents with identical labels, GPU count and locality share one task queue."""
    canonical = json.dumps({"labels": dict(sorted(labels.items())), "gpu_count": gpu_count, "local": local},
                           sort_keys=True, separators=(",", ":"))
    return "gpu." + hashlib.sha256(canonical.encode()).hexdigest()[:16]


def labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """Every selector key must be present; values are glob patterns (``a100*``)."""
    return all(key in labels and fnmatch.fnmatchcase(labels[key], pattern) for key, pattern in selector.items())


def job_id_for(owner_id: str, idempotency_key: str | None, random_hex: str) -> str:
    """Same owner + idempotency key gives the same job (= workflow) id, so Temporal starts it once."""
    if idempotency_key:
        digest = hashlib.sha256(f"{owner_id}\x00{idempotency_key}".encode()).hexdigest()[:24]
        return f"job-{digest}"
    return f"job-{random_hex[:24]}"


# ---- search attributes ---------------------------------------------------------------------

SA_JOB_STATUS = SearchAttributeKey.for_keyword("JobStatus")
SA_JOB_OWNER = SearchAttributeKey.for_keyword("JobOwner")
SA_CONFIG_NAME = SearchAttributeKey.for_keyword("ConfigName")
SA_JOB_TARGET = SearchAttributeKey.for_keyword("JobTarget")
SA_AGENT_NAME = SearchAttributeKey.for_keyword("AgentName")
SA_JOB_ATTEMPT = SearchAttributeKey.for_int("JobAttempt")
SA_APPROVAL_STATE = SearchAttributeKey.for_keyword("ApprovalState")
SA_ORG_SLUG = SearchAttributeKey.for_keyword("OrgSlug")
SA_TEAM_SLUG = SearchAttributeKey.for_keyword("TeamSlug")
SA_COST_ESTIMATE = SearchAttributeKey.for_float("CostEstimateUsd")
SA_QUEUE_PRIORITY = SearchAttributeKey.for_int("QueuePriority")
SEARCH_ATTRIBUTES: tuple[SearchAttributeKey, ...] = (
    SA_JOB_STATUS, SA_JOB_OWNER, SA_CONFIG_NAME, SA_JOB_TARGET, SA_AGENT_NAME, SA_JOB_ATTEMPT, SA_APPROVAL_STATE,
    SA_ORG_SLUG, SA_TEAM_SLUG, SA_COST_ESTIMATE, SA_QUEUE_PRIORITY,
)


def task_queue_priority(level_priority: int) -> int:
    """Temporal's priority key (1 = first): admin 1, lead 2, researcher 3, viewer and below 4."""
    if level_priority >= LEVEL_PRIORITY["admin"]:
        return 1
    if level_priority >= LEVEL_PRIORITY["lead"]:
        return 2
    if level_priority >= LEVEL_PRIORITY["researcher"]:
        return 3
    return 4


def approver_eligible(required_level: str, level_priority: int, may_approve: bool, approve_granted: bool) -> bool:
    """Deciding needs ``admin.approve``; the approver's level must reach the rule's required level,
    unless ``admin.approve`` was granted to them personally (a per-user override)."""
    if not may_approve:
        return False
    return approve_granted or level_priority >= LEVEL_PRIORITY.get(required_level, LEVEL_PRIORITY["admin"])


# ---- payloads ---------------------------------------------------------------------------

class TrainingConfigSpec(BaseModel):
    """A resolved training config as the agent needs it."""
    name: str
    args: dict = Field(default_factory=dict)
    command: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    gpu_count: int = 1
    hardware_type: str | None = None
    estimated_hours: float | None = None


class JobSubmission(BaseModel):
    """Workflow input: what the API accepted."""
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


class EvaluatedJob(BaseModel):
    """Result of evaluating a submission: the frozen config the job will run."""
    config: TrainingConfigSpec
    gpu_count: int
    cost_estimate_usd: float | None = None
    approval: ApprovalRequirement | None = None
    scope: JobScope | None = None  # who the job is charged to and its queue priority


class AdmissionRequest(BaseModel):
    job_id: str
    scope: JobScope


class AdmissionTicket(BaseModel):
    """Result of asking for (or checking) a concurrency slot."""
    admitted: bool
    reason: str | None = None


class OpenApproval(BaseModel):
    """Activity input: create the job's approval request (idempotent per job)."""
    job_id: str
    owner_id: str
    owner_name: str
    config_name: str
    requirement: ApprovalRequirement


class ApprovalOpened(BaseModel):
    request_id: str
    expires_at: datetime


class ApprovalDecision(BaseModel):
    """Update input: a decision from REST or from an e-mail reply, with who made it."""
    decision: Literal["approve", "reject", "cancel"]
    actor_id: str
    actor_name: str
    level_priority: int = 0
    may_approve: bool = False  # holds admin.approve
    approve_granted: bool = False  # admin.approve granted to this user personally
    may_cancel_any: bool = False  # holds job.cancel.all (cancel someone else's request)
    channel: Literal["rest", "email"] = "rest"
    comment: str | None = Field(None, max_length=2000)
    message_id: str | None = None


class ApprovalOutcome(BaseModel):
    """Update result and activity input: the closed state of an approval request."""
    request_id: str
    job_id: str
    status: ApprovalStatus
    actor_id: str | None = None
    actor_name: str | None = None
    channel: str | None = None
    comment: str | None = None


class ApprovalNotice(BaseModel):
    """Activity input: whom to tell what about an approval request, by e-mail."""
    request_id: str
    kind: Literal["required", "expired", "rejected", "approved", "cancelled"]


class PlacementRequest(BaseModel):
    job_id: str
    target: JobTarget
    worker_labels: dict[str, str]
    gpu_count: int
    # agent id -> when it was lost on this job: skipped unless it registered again since
    excluded_agents: dict[str, datetime] = Field(default_factory=dict)


class Placement(BaseModel):
    """Where to dispatch, or why the job must wait."""
    task_queue: str | None = None
    is_local: bool = False
    agent_count: int = 0
    reason: str | None = None


class TrainingAssignment(BaseModel):
    """Input of the ``run_training`` activity executed by a GPU agent."""
    job_id: str
    attempt: int
    owner_name: str
    config: TrainingConfigSpec


class OutputFile(BaseModel):
    name: str
    size: int
    sha256: str


class TrainingOutcome(BaseModel):
    exit_code: int
    agent_id: str
    agent_name: str
    outputs: list[OutputFile] = Field(default_factory=list)
    duration_seconds: float = 0.0


class AgentStarted(BaseModel):
    """Signal: an agent claimed the job's current attempt and started the process."""
    agent_id: str
    agent_name: str
    attempt: int


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


class MailboxConfig(BaseModel):
    """Which mailbox the watcher reads; a new fingerprint restarts it."""
    configured: bool
    fingerprint: str = ""
    description: str = ""
