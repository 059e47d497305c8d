"""Dispatch across the two planes: what the job workflow records before a dispatch, what crosses the
Nexus endpoint into the GPU namespace, what agents receive, and how a dispatch is settled.

Nothing that reaches the GPU namespace carries authority or secrets: the task names a job and an
attempt number, and an agent gets the command and config of that attempt from the API only when
the database shows the attempt dispatched to the agent's pool and not claimed by another agent.
What comes back from the GPU plane is a report, not a verdict: the control plane settles each
dispatch from the database (claims and the claiming agent's own exit report).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import nexusrpc
from pydantic import BaseModel, Field

from workflows.contracts.jobs import Transition
from workflows.contracts.names import NEXUS_SERVICE

# ---- GPU namespace -----------------------------------------------------------------------------------


class TrainingTask(BaseModel):
    """Input of ``run_training`` on a pool's task queue: which attempt of which job. Anything else a
    sender adds is ignored."""
    job_id: str
    attempt: int


class DispatchRequest(BaseModel):
    """Input of the Nexus operation and of the dispatch workflow it starts."""
    job_id: str
    dispatch: int  # the job's dispatch number (one per placement)
    task_queue: str  # the pool's queue
    first_attempt: int
    last_attempt: int  # attempt numbers the control plane recorded for this dispatch
    max_lost: int  # lost agents tolerated before the dispatch gives up
    heartbeat_timeout_seconds: float
    start_timeout_seconds: float  # schedule-to-start of each try: a pool that never picks it up is left
    priority_key: int | None = None
    fairness_key: str | None = None
    summary: str = ""
    lost_before: int = 0  # agents lost by earlier runs of this dispatch (continue-as-new)
    max_history_events: int | None = None  # continue as new between tries past this many events


class DispatchResult(BaseModel):
    """The GPU plane's report of how a dispatch ended (a hint: the database decides)."""
    outcome: Literal["finished", "failed", "lost", "not_started", "closed"]
    attempt: int  # the last attempt number tried
    lost: int = 0
    error: str | None = None


@nexusrpc.service(name=NEXUS_SERVICE)
class GpuDispatchService:
    dispatch: nexusrpc.Operation[DispatchRequest, DispatchResult]


# ---- control-plane activities around a dispatch ----------------------------------------------------


class DispatchOpening(BaseModel):
    """Activity input: record that attempts ``first_attempt``.. may run on ``task_queue`` (and, in the
    same transaction, the job's transition to waiting for an agent of that pool)."""
    job_id: str
    task_queue: str
    first_attempt: int
    attempts: int
    transition: Transition | None = None


class DispatchTicket(BaseModel):
    dispatch: int
    first_attempt: int
    last_attempt: int


class ClaimCheck(BaseModel):
    """Activity input: did this agent really claim this attempt?"""
    job_id: str
    attempt: int
    agent_id: str


class ConfirmedClaim(BaseModel):
    confirmed: bool
    attempt: int = 0
    agent_id: str | None = None
    agent_name: str | None = None
    reason: str | None = None


class SettleRequest(BaseModel):
    job_id: str
    dispatch: int
    reported: DispatchResult | None = None  # None: the dispatch was cancelled


class SettledDispatch(BaseModel):
    """How a dispatch ended, as the database shows it."""
    outcome: Literal["completed", "failed", "lost", "not_started"]
    attempt: int = 0  # the latest claimed attempt (0: none)
    agent_id: str | None = None
    agent_name: str | None = None
    lost_attempts: int = 0
    lost_agents: dict[str, datetime] = Field(default_factory=dict)
    error: str | None = None
