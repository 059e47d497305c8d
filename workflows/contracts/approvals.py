"""Payloads of the approval wait and the mailbox watcher (control namespace)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from workflows.contracts.jobs import ApprovalRequirement
from workflows.contracts.names import LEVEL_PRIORITY, ApprovalStatus


def approver_eligible(required_level: str, level_priority: int, may_approve: bool, approve_granted: bool) -> bool:
    """Deciding needs the approving permission; the approver's level must reach the rule's required
    level, unless that permission was granted to them personally (a per-user override)."""
    if not may_approve:
        return False
    return approve_granted or level_priority >= LEVEL_PRIORITY.get(required_level, LEVEL_PRIORITY["admin"])


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
    """Update input: who decided what, through which channel, with which comment, and the id of the
    decision the channel recorded in the database (the REST call's or the e-mail's Message-ID).
    It grants nothing by itself: the workflow has an activity check it against the database.

    Histories recorded before that check carried the approver's level and permissions here too;
    ``extra="allow"`` keeps them readable for those replays (see ``workflows/legacy_approval.py``)."""
    model_config = ConfigDict(extra="allow")
    decision: Literal["approve", "reject", "cancel", "expire"]  # expire: an approver's "expire now"
    actor_id: str
    actor_name: str
    channel: Literal["rest", "queue", "email"] = "rest"
    comment: str | None = Field(None, max_length=2000)
    message_id: str | None = None


class DecisionCheck(BaseModel):
    """Activity input: is this decision real and may its actor make it?"""
    request_id: str
    job_id: str
    decision: ApprovalDecision


class DecisionVerdict(BaseModel):
    allowed: bool
    actor_name: str | None = None  # as the database knows the actor
    error_type: str | None = None  # ERR_APPROVAL_FORBIDDEN | ERR_APPROVAL_NOT_PENDING when refused
    message: str | None = None


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


class MailboxConfig(BaseModel):
    """Which mailbox the watcher reads; a new fingerprint restarts it."""
    configured: bool
    fingerprint: str = ""
    description: str = ""
    max_history_events: int | None = None  # the watcher continues as new past this many events
