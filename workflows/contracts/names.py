"""Names that cross Temporal: namespaces' task queues, workflow, signal, update and error type names,
job statuses, levels, workflow-id helpers and search-attribute keys. Pure data, workflow-safe."""

from __future__ import annotations

import hashlib
from typing import Literal

from temporalio.common import SearchAttributeKey

# ---- the control namespace (job workflows, approvals, admission, the mailbox watcher) --------------

CONTROL_TASK_QUEUE = "simpletuner.control"
TRAINING_WORKFLOW = "TrainingJobWorkflow"
MAILBOX_WATCHER_WORKFLOW = "MailboxWatcherWorkflow"
MAILBOX_WATCHER_ID = "simpletuner-mailbox-watcher"  # one per namespace
RECONCILER_WORKFLOW = "ReconcilerWorkflow"
RECONCILER_SCHEDULE_ID = "simpletuner-reconciler"  # a Temporal Schedule, every minute
MAILBOX_CHANGED_SIGNAL = "mailbox_config_changed"
ADMISSION_GRANTED_SIGNAL = "admission_granted"
AGENT_STARTED_SIGNAL = "agent_started"
AGENTS_CHANGED_SIGNAL = "agents_changed_signal"
APPROVAL_DECISION_UPDATE = "decide_approval"

# ---- the GPU namespace (what agents can reach) -----------------------------------------------------

GPU_DISPATCH_TASK_QUEUE = "simpletuner.dispatch"  # dispatch workflows and the Nexus handler (worker host)
DISPATCH_WORKFLOW = "GpuDispatchWorkflow"
NEXUS_SERVICE = "SimpleTunerGpuDispatch"
RUN_TRAINING_ACTIVITY = "run_training"

# ---- statuses and levels ----------------------------------------------------------------------------

JobStatus = Literal["pending", "pending_approval", "queued", "running", "completed", "failed", "cancelled"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
ALL_STATUSES: tuple[str, ...] = ("pending", "pending_approval", "queued", "running", "completed", "failed", "cancelled")
AGENT_TARGETS = ("worker", "local", "auto")  # any other target names a cloud provider
JobTarget = str  # "worker" | "local" | "auto" (GPU agents) or a cloud provider's name ("replicate")
ApprovalStatus = Literal["pending", "approved", "rejected", "expired", "cancelled"]

# Level names and priorities (viewer 10, researcher 20, lead 30, admin 100).
LEVEL_PRIORITY: dict[str, int] = {"viewer": 10, "researcher": 20, "lead": 30, "admin": 100}

# ---- error types raised by activities and read by workflows ----------------------------------------

ERR_TRAINING_FAILED = "TrainingProcessFailed"  # the process exited non-zero: job fails, no retry
ERR_AGENT_UNAVAILABLE = "AgentUnavailable"  # agent refused or handed back the task: retry elsewhere
ERR_DISPATCH_CLOSED = "DispatchClosed"  # the control plane refused the claim for good: the dispatch ends
ERR_INVALID_SUBMISSION = "InvalidSubmission"  # evaluation rejected the job
ERR_APPROVAL_NOT_PENDING = "ApprovalNotPending"  # the request was already decided, expired or cancelled
ERR_APPROVAL_FORBIDDEN = "ApprovalForbidden"  # the caller may not decide this request
ERR_WORKFLOW_CONTINUING = "WorkflowContinuing"  # the run is handing over to its next one: send it again


# ---- workflow ids ------------------------------------------------------------------------------------

def job_id_for(owner_id: str, idempotency_key: str | None, random_hex: str) -> str:
    """Same owner + idempotency key gives the same job (= workflow) id, so Temporal starts it once."""
    if idempotency_key:
        digest = hashlib.sha256(f"{owner_id}\x00{idempotency_key}".encode()).hexdigest()[:24]
        return f"job-{digest}"
    return f"job-{random_hex[:24]}"


def dispatch_workflow_id(job_id: str, dispatch: int) -> str:
    """The GPU-plane workflow of one dispatch of a job."""
    return f"{job_id}-dispatch-{dispatch}"


# ---- search attributes (control namespace) ---------------------------------------------------------

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
