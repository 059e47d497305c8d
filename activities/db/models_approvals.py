"""Approval rules, approval requests, e-mail reply tokens, inbound replies and notification channels."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from activities.db.models import utcnow


class ApprovalRule(SQLModel, table=True):
    id: str = Field(primary_key=True)
    name: str = Field(unique=True, index=True)
    description: str | None = None
    condition: str  # cost_exceeds | hardware_type | daily_jobs_exceed | first_job | config_pattern | provider
    threshold: str | None = None  # number for numeric conditions, glob for pattern conditions
    priority: int = 0  # higher is evaluated first; ties by creation time
    required_approver_level: str = "lead"
    exempt_levels: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    applies_to_provider: str | None = None  # glob on the job's target/provider
    applies_to_level: str | None = None  # only submitters holding this level
    enabled: bool = True
    created_by: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ApprovalRequest(SQLModel, table=True):
    __table_args__ = (Index("ix_approval_page", "created_at", "id"),
                      Index("ix_approval_status_page", "status", "created_at", "id"))  # list pages (keyset)
    id: str = Field(primary_key=True)
    job_id: str = Field(unique=True, index=True)
    user_id: str = Field(index=True)  # the submitter
    username: str
    config_name: str
    rule_id: str | None = None
    rule_name: str
    reason: str
    required_level: str
    cost_estimate_usd: float | None = None
    status: str = Field(default="pending", index=True)  # pending | approved | rejected | expired | cancelled
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    decided_at: datetime | None = None
    decided_by: str | None = None
    decided_by_id: str | None = None
    channel: str | None = None  # rest | email | system
    comment: str | None = None


class ApprovalToken(SQLModel, table=True):
    """A single-use reply token, one per (request, approver); only its SHA-256 is kept."""
    id: str = Field(primary_key=True)
    request_id: str = Field(index=True)
    approver_id: str
    approver_email: str
    token_hash: str = Field(unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    sent_at: datetime | None = None
    used_at: datetime | None = None
    used_message_id: str | None = None


class InboundEmail(SQLModel, table=True):
    """Every reply the mailbox watcher read, keyed by Message-ID: the same message never counts twice."""
    message_id: str = Field(primary_key=True)
    sender: str
    request_id: str | None = None
    decision: str | None = None  # approve | reject | None
    status: str  # delivering | applied | refused | ignored
    detail: str | None = None
    received_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None


class NotificationChannel(SQLModel, table=True):
    id: str = Field(primary_key=True)
    name: str = Field(unique=True, index=True)
    channel_type: str  # email
    enabled: bool = True
    source: str = "api"  # api | config
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_use_tls: bool = False  # STARTTLS on a plain connection
    smtp_use_ssl: bool = False  # implicit TLS (port 465)
    smtp_username: str | None = None
    smtp_password_encrypted: str | None = None
    from_address: str | None = None
    imap_host: str | None = None
    imap_port: int | None = None
    imap_use_ssl: bool = False
    imap_username: str | None = None
    imap_password_encrypted: str | None = None
    imap_folder: str = "INBOX"
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ApprovalDecisionIntent(SQLModel, table=True):
    """A decision an authenticated channel recorded before asking the job's workflow to apply it:
    the REST call of a signed-in approver, or an e-mail reply whose token was spent. The workflow's
    check reads this row (never the update's payload) and spends it."""
    id: str = Field(primary_key=True)  # also the Workflow Update id
    request_id: str = Field(index=True)
    job_id: str
    actor_id: str
    actor_name: str
    decision: str  # approve | reject | cancel
    channel: str  # rest | queue | email
    comment: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    used_at: datetime | None = None
