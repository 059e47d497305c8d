"""Payloads of a job that runs on a cloud provider (Replicate) instead of a GPU agent.

The workflow asks the database (through activities) for everything: the provider's answers reach it
only as what a verified webhook or a poll recorded; the ``provider_training_changed`` signal is a hint
to read it again.
"""

from __future__ import annotations

from pydantic import BaseModel

PROVIDER_CHANGED_SIGNAL = "provider_training_changed"


class ProviderStart(BaseModel):
    """Result of ``start_provider_training``: the training, or why none exists yet and when to try again."""
    training_id: str | None = None
    job_status: str = "queued"
    reason: str | None = None  # e.g. the provider's circuit is open
    retry_in_seconds: float | None = None  # None with no training: the job cannot run (error holds why)
    error: str | None = None
    poll_seconds: float = 30.0  # how often the workflow polls (longer when webhooks are expected)


class ProviderSyncRequest(BaseModel):
    job_id: str
    poll: bool  # ask the provider (else read what webhooks recorded)


class ProviderSync(BaseModel):
    """The training as recorded, mapped to the job's status."""
    training_id: str | None = None
    provider_status: str
    job_status: str  # queued | running | completed | failed | cancelled
    terminal: bool = False
    error: str | None = None
    reason: str | None = None  # shown while queued (e.g. "starting on replicate")
