"""What a job workflow carries into its next run when it continues as new.

The job id, search attributes and Web UI view stay; this is the state only the workflow holds: where
it was (waiting for approval, for a slot, or for an agent), the evaluation it already ran (never run
twice: it charged the quotas), its counters, and the hints (signals) it had received but not yet
confirmed in the database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from workflows.contracts.approvals import ApprovalOpened
from workflows.contracts.jobs import AgentStarted, EvaluatedJob, JobScope, JobSubmission


class JobResume(BaseModel):
    phase: Literal["approval", "admission", "placement", "provider"]
    evaluated: EvaluatedJob
    status: str
    queue_reason: str | None = None
    error: str | None = None
    attempt: int = 0
    failures: int = 0
    seq: int = 0
    agent: AgentStarted | None = None
    scope: JobScope | None = None
    excluded_agents: dict[str, datetime] = Field(default_factory=dict)
    approval: ApprovalOpened | None = None  # the pending request (phase "approval")
    admission_hint: bool = False
    agents_changed: bool = False
    claim_hints: list[AgentStarted] = Field(default_factory=list)
    previous_run_id: str  # the run this one continues (the database moves the job's binding along)
    runs: int = 1  # how many runs came before this one


class RunContinuation(BaseModel):
    """Input of ``continue_job_run``: the new run asks the database to move the job's binding to it."""
    job_id: str
    previous_run_id: str


JobSubmission.model_rebuild()
