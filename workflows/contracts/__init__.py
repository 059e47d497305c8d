"""Everything that crosses Temporal: names (task queues, workflows, signals, errors, search
attributes), placement helpers and payload models, re-exported here so callers import from
``workflows.contracts``.

Workflow-safe: pure data and pure functions, no I/O. The GPU agent imports only this package from
the control plane.
"""

from workflows.contracts.approvals import (
    ApprovalDecision, ApprovalNotice, ApprovalOpened, ApprovalOutcome, DecisionCheck, DecisionVerdict, MailboxConfig,
    OpenApproval, approver_eligible,
)
from workflows.contracts.continuation import JobResume, RunContinuation
from workflows.contracts.providers import PROVIDER_CHANGED_SIGNAL, ProviderStart, ProviderSync, ProviderSyncRequest
from workflows.contracts.dispatch import (
    ClaimCheck, ConfirmedClaim, DispatchOpening, DispatchRequest, DispatchResult, DispatchTicket, GpuDispatchService,
    SettledDispatch, SettleRequest, TrainingTask,
)
from workflows.contracts.jobs import (
    AdmissionRequest, AdmissionTicket, AgentStarted, ApprovalRequirement, EvaluatedJob, JobResult, JobScope,
    JobSubmission, OutputFile, Placement, PlacementRequest, ReconcileReport, RunLimits, TrainingAssignment, TrainingConfigSpec,
    TrainingOutcome, Transition,
)
from workflows.contracts.names import (
    ADMISSION_GRANTED_SIGNAL, AGENT_STARTED_SIGNAL, AGENTS_CHANGED_SIGNAL, ALL_STATUSES, APPROVAL_DECISION_UPDATE,
    CONTROL_TASK_QUEUE, DISPATCH_WORKFLOW, ERR_AGENT_UNAVAILABLE, ERR_APPROVAL_FORBIDDEN, ERR_APPROVAL_NOT_PENDING,
    ERR_DISPATCH_CLOSED, ERR_INVALID_SUBMISSION, ERR_WORKFLOW_CONTINUING, ERR_TRAINING_FAILED, GPU_DISPATCH_TASK_QUEUE, LEVEL_PRIORITY,
    MAILBOX_CHANGED_SIGNAL, MAILBOX_WATCHER_ID, MAILBOX_WATCHER_WORKFLOW, NEXUS_SERVICE, RECONCILER_SCHEDULE_ID,
    RECONCILER_WORKFLOW, RUN_TRAINING_ACTIVITY,
    SA_AGENT_NAME, SA_APPROVAL_STATE, SA_CONFIG_NAME, SA_COST_ESTIMATE, SA_JOB_ATTEMPT, SA_JOB_OWNER, SA_JOB_STATUS,
    SA_JOB_TARGET, SA_ORG_SLUG, SA_QUEUE_PRIORITY, SA_TEAM_SLUG, SEARCH_ATTRIBUTES, TERMINAL_STATUSES,
    TRAINING_WORKFLOW, ApprovalStatus, JobStatus, JobTarget, AGENT_TARGETS, dispatch_workflow_id, job_id_for, task_queue_priority,
)
from workflows.contracts.placement import (
    CPU, hardware_matches, labels_match, normalize_hardware_type, pool_task_queue,
)

__all__ = [name for name in dir() if not name.startswith("_")]
