"""Figures read from the database at scrape time, so every API replica reports the same: jobs,
approvals, audit entries, cost limits and the database round trip. Each is a handful of aggregate
queries (GROUP BY over indexed columns, SUM, a CASE per histogram bucket), never a loop over rows.

Provider credit balances have no source (Replicate's API does not report one): that family is exported
without series rather than with made-up values."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import timedelta

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from sqlalchemy import Float, case, cast, func
from sqlmodel import Session, col, select

from activities.db.engine import ping
from activities.db.models import AuditEntry, Job, utcnow
from activities.db.models_approvals import ApprovalRequest
from activities.db.models_providers import ProviderCircuit
from activities.providers import circuit
from activities.governance import cost_limits
from activities.observability.metrics_catalog import HELP
from workflows.contracts import ALL_STATUSES, TERMINAL_STATUSES

APPROVAL_STATUSES = ("pending", "approved", "rejected", "expired", "cancelled")
# Training runs last minutes to days: buckets from one minute to three days, in seconds.
JOB_DURATION_BUCKETS = (60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0, 259200.0)


def _counter(name: str, value: float | None = None, labels: Iterable[str] = ()) -> CounterMetricFamily:
    return CounterMetricFamily(name, HELP[name], value=value, labels=None if value is not None else list(labels))


def _gauge(name: str, value: float | None = None, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, HELP[name], value=value, labels=None if value is not None else list(labels))


def _run_seconds(session: Session):
    """SQL for finished_at - started_at in seconds, on this database."""
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", Job.finished_at - Job.started_at)
    # julianday is a float of days: rounded to the millisecond, 7200 s stays 7200 (not 7199.9999...)
    return func.round((func.julianday(Job.finished_at) - func.julianday(Job.started_at)) * 86400.0, 3)


def jobs(session: Session) -> list[Metric]:
    rows = session.exec(select(Job.status, func.count(), func.coalesce(func.sum(Job.cost_usd), 0.0))
                        .group_by(Job.status)).all()
    by_status = {status: (int(n), float(cost)) for status, n, cost in rows}
    statuses = _gauge("simpletuner_jobs_by_status", labels=["status"])
    for status in (*ALL_STATUSES, *sorted(set(by_status) - set(ALL_STATUSES))):
        statuses.add_metric([status], by_status.get(status, (0, 0.0))[0])
    active = sum(n for status, (n, _) in by_status.items() if status not in TERMINAL_STATUSES)
    ended = [col(Job.status).in_(TERMINAL_STATUSES), col(Job.started_at).is_not(None),
             col(Job.finished_at).is_not(None)]
    # Materialized: each run time is computed once, not once per bucket (SQLite parses dates each time).
    runs = select(cast(_run_seconds(session), Float).label("seconds")).where(*ended).cte("runs") \
        .prefix_with("MATERIALIZED")
    seconds = runs.c.seconds
    columns = [func.count(), func.coalesce(func.sum(seconds), 0.0)]
    columns += [func.coalesce(func.sum(case((seconds <= bound, 1), else_=0)), 0) for bound in JOB_DURATION_BUCKETS]
    count, total, *cumulative = session.exec(select(*columns).select_from(runs)).one()
    count, total = int(count), float(total)
    buckets = [(_bound(b), int(n)) for b, n in zip(JOB_DURATION_BUCKETS, cumulative)] + [("+Inf", count)]
    duration = HistogramMetricFamily("simpletuner_job_duration_seconds", HELP["simpletuner_job_duration_seconds"],
                                     buckets=buckets, sum_value=total)
    return [_counter("simpletuner_jobs_total", sum(n for n, _ in by_status.values())), statuses,
            _gauge("simpletuner_jobs_active", active),
            _counter("simpletuner_cost_usd_total", round(sum(c for _, c in by_status.values()), 6)),
            _gauge("simpletuner_job_duration_seconds_avg", round(total / count, 3) if count else 0.0), duration]


def _bound(value: float) -> str:
    return str(int(value)) if value.is_integer() else str(value)


def approvals(session: Session) -> list[Metric]:
    rows = dict(session.exec(select(ApprovalRequest.status, func.count()).group_by(ApprovalRequest.status)).all())
    by_status = _gauge("simpletuner_approval_requests_by_status", labels=["status"])
    for status in (*APPROVAL_STATUSES, *sorted(set(rows) - set(APPROVAL_STATUSES))):
        by_status.add_metric([status], int(rows.get(status, 0)))
    return [_gauge("simpletuner_approval_requests_pending", int(rows.get("pending", 0))), by_status]


def audit(session: Session) -> list[Metric]:
    total = session.exec(select(func.count()).select_from(AuditEntry)).one()
    since = utcnow() - timedelta(hours=24)
    recent = session.exec(select(func.count()).select_from(AuditEntry).where(AuditEntry.created_at >= since)).one()
    return [_counter("simpletuner_audit_log_entries_total", int(total)),
            _gauge("simpletuner_audit_log_entries_24h", int(recent))]


def database_latency(session: Session) -> list[Metric]:
    started = time.perf_counter()
    ping(session)
    return [_gauge("simpletuner_health_database_latency_ms", round((time.perf_counter() - started) * 1000, 3))]


def circuit_breakers(session: Session) -> list[Metric]:
    """One series per cloud provider whose breaker has seen a call fail (a row exists)."""
    state = _gauge("simpletuner_circuit_breaker_state", labels=["provider"])
    failures = _counter("simpletuner_circuit_breaker_failures_total", labels=["provider"])
    for row in session.exec(select(ProviderCircuit).order_by(ProviderCircuit.provider)):
        shown = circuit.state(session, row.provider)["state"]
        state.add_metric([row.provider], circuit.STATE_VALUES[shown])
        failures.add_metric([row.provider], row.failures_total)
    return [state, failures]


def providers(session: Session) -> list[Metric]:
    used = _gauge("simpletuner_cost_limit_percent_used", labels=["provider"])
    for row in cost_limits.all_status(session):  # one row per provider with a configured limit
        if row["status"] != "disabled" and row["percent_used"] is not None:
            used.add_metric([row["provider"]], row["percent_used"])
    return [used, _gauge("simpletuner_credit_balance_usd", labels=["provider"])]


READERS: dict[str, Callable[[Session], list[Metric]]] = {
    "jobs": jobs, "approvals": approvals, "audit": audit, "health": database_latency,
    "circuit_breakers": circuit_breakers, "provider": providers,
}
