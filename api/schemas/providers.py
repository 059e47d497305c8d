"""Answers of the cloud-provider routes: the list with each one's state, and a credential check."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from api.schemas.base import Answer


class Circuit(Answer):
    state: Literal["closed", "half_open", "open"]
    consecutive_failures: int
    failures_total: int
    opened_at: datetime | None
    retry_at: datetime | None = Field(description="while open: when calls are tried again")
    last_error: str | None


class Provider(Answer):
    name: str
    configured: bool = Field(description="trainings can be created (version and destination are set)")
    missing: list[str] = Field(description="settings still needed")
    healthy: bool = Field(description="configured and its circuit is not open")
    webhooks: bool = Field(description="a webhook_url is set: status arrives by webhook, polling is the safety net")
    polling_interval_seconds: float
    circuit: Circuit


class ProviderList(Answer):
    providers: list[Provider]


class Validation(Answer):
    provider: str
    valid: bool
    credential_source: Literal["user", "global"] | None = Field(description="which credential was tried")
    account: str | None = Field(description="the account the token belongs to, when valid")
    error: str | None


class WebhookAck(Answer):
    received: Literal[True]
    applied: bool = Field(description="false for a delivery already applied (a retry): acknowledged only")
    job_id: str
