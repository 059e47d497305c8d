"""Answers of the approval request routes: a request (``activities.governance.approvals.to_dict``),
its lists, counts, one's own view and the results of bulk decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from api.schemas.base import Answer, NextCursor, Total
from workflows.contracts import ApprovalStatus as RequestStatus


class ApprovalRequest(Answer):
    id: str
    job_id: str
    user_id: str = Field(description="the submitter")
    username: str
    config_name: str
    rule_id: str | None
    rule_name: str
    reason: str
    required_level: str = Field(description="the level an approver needs")
    cost_estimate_usd: float | None
    status: RequestStatus
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    channel: str | None = Field(description="how it was decided: rest, queue, email or system")
    comment: str | None


class RequestPage(Answer):
    requests: list[ApprovalRequest]
    total: Total
    next_cursor: NextCursor
    limit: int
    offset: int


class PendingCount(Answer):
    count: int


class MyApprovals(Answer):
    user_id: str
    username: str
    can_approve: bool
    awaiting_my_decision: int = Field(description="pending requests of others' jobs the caller may decide")
    my_pending: int = Field(description="the caller's own pending requests")
    requests: list[ApprovalRequest] = Field(description="the caller's own requests, newest first")
    total: Total
    next_cursor: NextCursor
    limit: int


class Decided(Answer):
    request_id: str
    ok: Literal[True]
    status: RequestStatus = Field(description="the request's status after the decision")


class Refused(Answer):
    request_id: str
    ok: Literal[False]
    status_code: int = Field(description="the HTTP status this request alone would have answered")
    detail: str


class BulkResult(Answer):
    results: list[Decided | Refused] = Field(description="one per distinct request id, in the order sent")
    succeeded: int
    failed: int
