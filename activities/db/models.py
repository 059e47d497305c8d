"""Tables of the app database (the read model and configuration; Temporal holds jobs in flight)."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import JSON, BigInteger, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(moment: datetime) -> datetime:
    """A stored datetime as timezone-aware UTC (some drivers hand back naive values)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class User(SQLModel, table=True):
    id: str = Field(primary_key=True)
    username: str = Field(unique=True, index=True)
    email: str | None = None
    display_name: str | None = None
    level: str = "researcher"  # the highest of the user's levels (kept in step by services.users)
    is_active: bool = True
    password_hash: str | None = None  # argon2; None for accounts that log in through SSO only
    auth_source: str = "local"  # local | ldap:<provider> | oidc:<provider>
    external_subject: str | None = None
    last_login_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime | None = None


class UserLevel(SQLModel, table=True):
    user_id: str = Field(foreign_key="user.id", primary_key=True)
    level: str = Field(primary_key=True)


class PermissionOverride(SQLModel, table=True):
    user_id: str = Field(foreign_key="user.id", primary_key=True)
    permission: str = Field(primary_key=True)
    granted: bool
    created_at: datetime = Field(default_factory=utcnow)


class AuthSession(SQLModel, table=True):
    """A browser login: the cookie carries a token whose SHA-256 is the id; CSRF token alongside."""
    id: str = Field(primary_key=True)
    user_id: str = Field(foreign_key="user.id", index=True)
    csrf_token: str
    ip: str | None = None
    user_agent: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    revoked_at: datetime | None = None


class LoginAttempt(SQLModel, table=True):
    """Failed logins, shared by all API replicas, for per-account and per-IP rate limits."""
    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(index=True)
    ip: str | None = Field(default=None, index=True)
    created_at: datetime = Field(default_factory=utcnow, index=True)


class ApiKey(SQLModel, table=True):
    id: str = Field(primary_key=True)
    user_id: str = Field(foreign_key="user.id", index=True)
    name: str
    key_hash: str = Field(unique=True, index=True)
    prefix: str
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    # the key itself, sealed with the credential cipher: its S3 secret (activities/storage/credentials.py);
    # None for keys made before the storage endpoint existed
    s3_secret_sealed: str | None = None


class TrainingConfig(SQLModel, table=True):
    name: str = Field(primary_key=True)
    args: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    command: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    env: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    gpu_count: int = 1
    hardware_type: str | None = None
    estimated_hours: float | None = None
    owner_id: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Job(SQLModel, table=True):
    __table_args__ = (Index("ix_job_page", "created_at", "id"), Index("ix_job_status_page", "status", "created_at", "id"),
                      Index("ix_job_owner_page", "owner_id", "created_at", "id"))  # list pages (keyset)
    id: str = Field(primary_key=True)
    owner_id: str = Field(index=True)
    owner_name: str
    config_name: str = Field(index=True)
    target: str
    worker_labels: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    gpu_count: int | None = None
    priority: int | None = None
    idempotency_key: str | None = None
    request_hash: str
    status: str = Field(default="pending", index=True)
    attempt: int = 0
    max_attempts: int = 3
    agent_id: str | None = None
    agent_name: str | None = None
    queue_reason: str | None = None
    error: str | None = None
    progress: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    outputs: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, index=True)
    updated_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    team_slug: str | None = None  # the team the submitter asked to charge (resolved at evaluation)
    team_id: str | None = Field(default=None, index=True)
    org_id: str | None = Field(default=None, index=True)
    cost_estimate_usd: float | None = None
    cost_usd: float | None = None  # actual: run time x GPUs x hourly rate, written at completion
    gpu_hours: float | None = None  # actual, written at completion
    gpu_hours_estimate: float | None = None
    hourly_rate_usd: float | None = None  # per GPU-hour: the estimate's at evaluation, the real hardware's once claimed
    warnings: list = Field(default_factory=list, sa_column=Column(JSON, nullable=True))
    # What the evaluation froze and decided (the API records the submission; the workflow's
    # evaluation reads it, once, from the run recorded here).
    frozen_config: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    approval_requirement: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    evaluated_at: datetime | None = None
    workflow_run_id: str | None = None
    # Whether the job counts against daily/monthly quotas and cost limits: "pending" until its
    # evaluation charged it ("charged") or refused it ("refused"). Rows from before evaluation
    # charged jobs were accepted by the API, hence the default.
    charge_state: str = "charged"
    hardware_type: str | None = None  # of the agent that claimed the latest attempt
    dispatch_seq: int = 0  # the job's latest dispatch (see JobDispatch)
    # what its storage bucket holds now (activities/storage/catalog.py keeps them with each object change)
    upload_bytes: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    upload_objects: int | None = None


class JobLogLine(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("job_id", "attempt", "seq"),)
    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(index=True)
    seq: int
    attempt: int = 0
    line: str
    created_at: datetime = Field(default_factory=utcnow)


class JobEvent(SQLModel, table=True):
    """Append-only event log; the id orders the SSE stream and resumes it (Last-Event-ID)."""
    __table_args__ = (UniqueConstraint("job_id", "transition_seq"),)
    id: int | None = Field(default=None, primary_key=True)
    job_id: str | None = Field(default=None, index=True)
    transition_seq: int | None = None
    event_type: str
    status: str | None = None
    data: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class AuditEntry(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    actor: str
    action: str = Field(index=True)
    target_type: str
    target_id: str | None = Field(default=None, index=True)
    ip: str | None = None
    details: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, index=True)  # the metrics count the last 24 hours


class Worker(SQLModel, table=True):
    id: str = Field(primary_key=True)
    name: str = Field(unique=True, index=True)
    worker_type: str = "persistent"
    local: bool = False
    labels: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    token_hash: str = Field(unique=True, index=True)
    state: str = "connecting"  # last state the agent reported (or disconnect)
    draining: bool = False
    gpu_count: int = 0
    gpu_name: str | None = None
    gpu_vram_gb: float | None = None
    accelerator_type: str | None = None
    hostname: str | None = None
    task_queue: str | None = None
    hardware_type: str | None = None  # normalised from what the agent reported (a100-80gb, h200, cpu, ...)
    unhealthy_since: datetime | None = None  # left a dispatched attempt unstarted while it looked idle
    unhealthy_reason: str | None = None
    current_job_id: str | None = None
    registered_at: datetime | None = None
    last_heartbeat: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
