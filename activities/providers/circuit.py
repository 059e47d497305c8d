"""A circuit breaker per cloud provider, kept in the database so every worker host and API process
sees the same state.

``closed``: calls go through; ``failure_threshold`` consecutive failures open it. ``open``: calls are
refused (``CircuitOpen``, with when to try again) until ``cooldown_seconds`` have passed; then the
breaker is ``half_open`` and lets calls through as a trial: a success closes it, a failure opens it
again for another cool-down. Each failure raises a ``system.provider_error`` event; opening raises
``system.provider_degraded``, closing again ``system.provider_recovered``. A job whose dispatch meets an
open breaker waits durably (a workflow timer) instead of failing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from activities.audit.trail import emit_event
from activities.db.models import as_utc, utcnow
from activities.db.models_providers import ProviderCircuit
from activities.errors import Unavailable

STATE_VALUES = {"closed": 0, "half_open": 1, "open": 2}  # simpletuner_circuit_breaker_state


class CircuitOpen(Unavailable):
    def __init__(self, provider: str, retry_at: datetime, last_error: str | None) -> None:
        super().__init__(f"cloud provider {provider} is unavailable (circuit open after repeated failures"
                         f"{': ' + last_error if last_error else ''}); next try at {retry_at.isoformat()}")
        self.provider, self.retry_at = provider, retry_at


def _row(session: Session, provider: str, lock: bool = False) -> ProviderCircuit:
    row = session.get(ProviderCircuit, provider, with_for_update=lock)
    return row if row is not None else ProviderCircuit(provider=provider)


def state(session: Session, provider: str, now: datetime | None = None) -> dict[str, Any]:
    row = _row(session, provider)
    now = now or utcnow()
    shown = row.state
    if row.state == "open" and row.retry_at is not None and as_utc(row.retry_at) <= now:
        shown = "half_open"  # the next call is the trial
    return {"state": shown, "consecutive_failures": row.consecutive_failures, "failures_total": row.failures_total,
            "opened_at": row.opened_at, "retry_at": row.retry_at if shown == "open" else None,
            "last_error": row.last_error}


def before_call(session: Session, provider: str, now: datetime | None = None) -> None:
    """CircuitOpen while the breaker is open and its cool-down runs; otherwise the call may go."""
    row = _row(session, provider)
    now = now or utcnow()
    if row.state == "open" and row.retry_at is not None and as_utc(row.retry_at) > now:
        raise CircuitOpen(provider, as_utc(row.retry_at), row.last_error)


def record_success(session: Session, provider: str) -> None:
    row = _row(session, provider, lock=True)
    if row.state == "closed" and row.consecutive_failures == 0:
        return
    reopened = row.state != "closed"
    row.state, row.consecutive_failures, row.retry_at, row.updated_at = "closed", 0, None, utcnow()
    session.add(row)
    if reopened:
        emit_event(session, "system.provider_recovered", data={"provider": provider})


def record_failure(session: Session, provider: str, error: str, threshold: int, cooldown_seconds: float,
                   now: datetime | None = None) -> bool:
    """Count a failed call; True when this failure opened the breaker."""
    row = _row(session, provider, lock=True)
    now = now or utcnow()
    row.consecutive_failures += 1
    row.failures_total += 1
    row.last_error, row.updated_at = error[:500], now
    trial = row.state == "open" and row.retry_at is not None and as_utc(row.retry_at) <= now
    opens = row.state == "half_open" or trial or (row.state == "closed" and row.consecutive_failures >= threshold)
    if opens:
        row.state, row.opened_at = "open", now
    if row.state == "open":
        row.retry_at = now + timedelta(seconds=cooldown_seconds)
    session.add(row)
    emit_event(session, "system.provider_error", data={"provider": provider, "error": row.last_error,
                                                        "consecutive_failures": row.consecutive_failures})
    if opens:
        emit_event(session, "system.provider_degraded", data={
            "provider": provider, "state": "open", "retry_at": row.retry_at.isoformat() if row.retry_at else None,
            "error": row.last_error})
    return opens
