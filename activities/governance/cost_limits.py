"""Cost limits per provider: spend in the current period (UTC day, ISO week, month) against a limit.

Spend = actual cost of the period's charged jobs that ran + the estimate of those still in flight,
so a limit also holds back submissions that would overshoot it once they run. A job whose cost cannot
be estimated is refused by a blocking limit (fail closed) and warned about by a warning one.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator
from sqlalchemy import func
from sqlmodel import Session, col, select

from activities.request_body import RequestBody
from activities.db.models import Job, utcnow
from activities.db.models_providers import ProviderConfig
from activities.errors import Forbidden, InvalidInput
from activities.audit.trail import audit
from activities.outbound_http.masking import masked_url as _masked
from activities.providers import settings as provider_settings
from activities.governance.usage import CHARGED, IN_FLIGHT, day_start, month_start

PROVIDER_RE = r"^[a-z0-9][a-z0-9_-]{0,63}$"
WARNING_SHARE = 0.8


class ProviderConfigBody(RequestBody):
    """A change of a provider's settings: only the fields sent change (the cloud-provider fields are in
    ``activities.providers.settings``)."""
    model_config = ConfigDict(extra="forbid")
    cost_limit_enabled: bool = False
    cost_limit_amount: float | None = Field(None, ge=0, le=1e9)
    cost_limit_period: Literal["daily", "weekly", "monthly"] = "monthly"
    cost_limit_action: Literal["warn", "block"] = "warn"
    version: str | None = Field(None, min_length=1, max_length=300)
    destination: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$")
    webhook_url: str | None = Field(None, min_length=1, max_length=2000)
    webhook_allowed_ips: list[str] | None = Field(None, max_length=256)
    polling_interval_seconds: float | None = Field(None, ge=1, le=86400)
    api_base_url: str | None = Field(None, min_length=1, max_length=2000)
    ssl_verify: bool | None = None
    ssl_verify_acknowledged: bool = False  # needed with ssl_verify: false (not stored)
    ca_bundle_path: str | None = Field(None, min_length=1, max_length=4096)
    proxy_url: str | None = Field(None, min_length=1, max_length=2000)
    http_timeout: float | None = Field(None, gt=0, le=3600)

    @field_validator("cost_limit_amount", "polling_interval_seconds", "http_timeout")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @field_validator("webhook_allowed_ips")
    @classmethod
    def _networks(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else provider_settings.check_networks(value)

    @field_validator("webhook_url", "api_base_url", "proxy_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else provider_settings.check_url(value)

    @field_validator("ca_bundle_path")
    @classmethod
    def _bundle(cls, value: str | None) -> str | None:
        return None if value is None else provider_settings.check_ca_bundle(value)


def period_start(period: str, now: datetime | None = None) -> datetime:
    if period == "daily":
        return day_start(now)
    if period == "weekly":
        today = day_start(now)
        return today - timedelta(days=today.weekday())
    return month_start(now)


def get(session: Session, provider: str) -> ProviderConfig:
    return session.get(ProviderConfig, provider) or ProviderConfig(provider=provider)


def put(session: Session, provider: str, body: ProviderConfigBody, actor: str, ip: str | None) -> ProviderConfig:
    """Change the fields ``body`` sets (the others keep their value)."""
    changes = body.model_dump(exclude_unset=True, exclude={"ssl_verify_acknowledged"})
    if changes.get("ssl_verify") is False and not body.ssl_verify_acknowledged:
        raise InvalidInput("ssl_verify: false needs ssl_verify_acknowledged: true in the same request: without "
                           "verification anyone on the network path can read and change this provider's calls, "
                           "its API token included; trust your CA with ca_bundle_path instead")
    row = session.get(ProviderConfig, provider) or ProviderConfig(provider=provider)
    for key, value in changes.items():
        setattr(row, key, value)
    if row.cost_limit_enabled and row.cost_limit_amount is None:
        raise InvalidInput("cost_limit_amount is required when cost_limit_enabled is true")
    row.updated_at, row.updated_by = utcnow(), actor
    session.add(row)
    shown = {**changes, "proxy_url": _masked(changes["proxy_url"])} if changes.get("proxy_url") else changes
    audit(session, actor, "provider.config_changed", "provider", provider, shown, ip=ip)  # no proxy password
    return row


def to_dict(row: ProviderConfig) -> dict[str, Any]:
    return {"provider": row.provider, "cost_limit_enabled": row.cost_limit_enabled,
            "cost_limit_amount": row.cost_limit_amount, "cost_limit_period": row.cost_limit_period,
            "cost_limit_action": row.cost_limit_action, "version": row.version, "destination": row.destination,
            "webhook_url": row.webhook_url, "webhook_allowed_ips": row.webhook_allowed_ips,
            "polling_interval_seconds": row.polling_interval_seconds, "api_base_url": row.api_base_url,
            "ssl_verify": row.ssl_verify, "ca_bundle_path": row.ca_bundle_path,
            "proxy_url": _masked(row.proxy_url) if row.proxy_url else None, "http_timeout": row.http_timeout,
            "updated_at": row.updated_at, "updated_by": row.updated_by}


def spend(session: Session, provider: str, since: datetime, exclude_job: str | None = None,
          with_pending: bool = False) -> float:
    where = [Job.target == provider, Job.created_at >= since,
             col(Job.charge_state).in_((CHARGED, "pending") if with_pending else (CHARGED,))]
    if exclude_job:
        where.append(Job.id != exclude_job)
    done = session.exec(select(func.coalesce(func.sum(Job.cost_usd), 0.0)).where(*where)).one()
    flying = session.exec(select(func.coalesce(func.sum(Job.cost_estimate_usd), 0.0))
                          .where(*where, col(Job.status).in_(IN_FLIGHT))).one()
    return round(float(done) + float(flying), 4)


def status(session: Session, row: ProviderConfig) -> dict[str, Any]:
    since = period_start(row.cost_limit_period)
    spent = spend(session, row.provider, since, with_pending=True)
    limit = row.cost_limit_amount
    share = (spent / limit) if limit else (math.inf if spent > 0 and limit == 0 else 0.0)
    state = "disabled" if not row.cost_limit_enabled or limit is None else (
        "exceeded" if share >= 1.0 else "warning" if share >= WARNING_SHARE else "ok")
    return {**to_dict(row), "period_start": since, "spend_usd": spent,
            "percent_used": round(share * 100, 1) if math.isfinite(share) else None, "status": state}


def all_status(session: Session) -> list[dict[str, Any]]:
    rows = session.exec(select(ProviderConfig).order_by(ProviderConfig.provider))
    return [status(session, row) for row in rows]


def check_submission(session: Session, provider: str, estimate: float | None,
                     exclude_job: str | None = None, with_pending: bool = True) -> str | None:
    """Raise Forbidden naming the limit for ``block``; return a warning text for ``warn``."""
    row = session.get(ProviderConfig, provider)
    if row is None or not row.cost_limit_enabled or row.cost_limit_amount is None:
        return None
    spent = spend(session, provider, period_start(row.cost_limit_period), exclude_job, with_pending)
    limit = f"{row.cost_limit_period} cost limit of provider {provider!r} is ${row.cost_limit_amount:.2f}"
    if estimate is None:
        message = (f"{limit}, and the cost of this job cannot be estimated (the config needs estimated_hours and "
                   f"a hardware_type with a known rate); ${spent:.2f} already committed")
    elif spent + estimate <= row.cost_limit_amount:
        return None
    else:
        message = f"{limit}: ${spent:.2f} already committed + ${estimate:.2f} estimated for this job"
    if row.cost_limit_action == "block":
        raise Forbidden(message + " (cost_limit_action block)")
    return message
