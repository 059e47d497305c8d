"""Answers of the cost routes: a provider's cost limit (``activities.governance.cost_limits``),
every limit's status and the estimate of a job before submitting it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from api.schemas.base import Answer

Period = Literal["daily", "weekly", "monthly"]


class ProviderConfig(Answer):
    provider: str = Field(description="a job target (local, worker, auto) or a cloud provider name")
    cost_limit_enabled: bool
    cost_limit_amount: float | None
    cost_limit_period: Period
    cost_limit_action: Literal["warn", "block"]
    version: str | None = Field(description="cloud providers: the trainer's 'owner/model:version-id'")
    destination: str | None = Field(description="cloud providers: the 'owner/model' trained weights go to")
    webhook_url: str | None = Field(description="public URL of POST /api/webhooks/{provider}; null: polling only")
    webhook_allowed_ips: list[str] | None = Field(description="CIDR ranges webhooks may come from (null: any)")
    polling_interval_seconds: float | None
    api_base_url: str | None
    ssl_verify: bool | None = Field(description="null: the process-wide setting")
    ca_bundle_path: str | None
    proxy_url: str | None = Field(description="its password is not shown")
    http_timeout: float | None
    updated_at: datetime
    updated_by: str | None


class ProviderStatus(ProviderConfig):
    period_start: datetime
    spend_usd: float = Field(description="actual cost of the period's jobs plus the estimate of those in flight")
    percent_used: float | None = Field(description="null when the limit is 0 and something was spent")
    status: Literal["disabled", "ok", "warning", "exceeded"]


class CostLimitStatus(Answer):
    providers: list[ProviderStatus]


class CostEstimate(Answer):
    config_name: str
    hardware_type: str | None
    gpu_count: int
    estimated_hours: float | None
    hourly_rate_usd: float | None = Field(description="per GPU-hour; null when the hardware has no known rate")
    gpu_hours: float | None
    cost_estimate_usd: float | None = Field(description="null when the hours or the rate is unknown")
