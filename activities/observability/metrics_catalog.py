"""What the Prometheus export can hold: the categories, the metrics of each (names as the operations
guide gives them), and the templates that pick categories. Pure data and checks; no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from activities.errors import InvalidInput, NotFound


@dataclass(frozen=True)
class Metric:
    name: str  # the exposed family name (a counter's is the sample name, ending in _total)
    kind: str  # counter | gauge | histogram
    help: str
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Category:
    id: str
    title: str
    description: str
    metrics: tuple[Metric, ...]


@dataclass(frozen=True)
class Template:
    id: str
    title: str
    description: str
    categories: tuple[str, ...]


CATEGORIES: tuple[Category, ...] = (
    Category("jobs", "Jobs", "Job counts by status, jobs in flight, spend and run time (from the database)", (
        Metric("simpletuner_jobs_total", "counter", "Jobs recorded"),
        Metric("simpletuner_jobs_by_status", "gauge", "Jobs per status", ("status",)),
        Metric("simpletuner_jobs_active", "gauge", "Jobs not yet ended (pending, pending_approval, queued, running)"),
        Metric("simpletuner_cost_usd_total", "counter", "Actual cost of every job, in USD"),
        Metric("simpletuner_job_duration_seconds_avg", "gauge", "Average run time of ended jobs that started"),
        Metric("simpletuner_job_duration_seconds", "histogram", "Run time of ended jobs that started"),
    )),
    Category("http", "HTTP", "Requests, errors and latency of this API, labelled by route template", (
        Metric("simpletuner_http_requests_total", "counter", "Requests answered, by method and route",
               ("endpoint",)),
        Metric("simpletuner_http_errors_total", "counter", "Answers with status 400 or above, by method, route "
               "and status", ("endpoint_status",)),
        Metric("simpletuner_http_request_latency_ms_avg", "gauge", "Average time to answer, in milliseconds, "
               "by method and route", ("endpoint",)),
        Metric("simpletuner_http_request_duration_seconds", "histogram", "Time to answer", ("method", "route")),
    )),
    Category("rate_limits", "Rate limits", "Requests refused by rate limits", (
        Metric("simpletuner_rate_limit_violations_total", "counter", "Requests refused by a rate limit"),
        Metric("simpletuner_rate_limit_tracked_clients", "gauge", "Clients the rate limiter is tracking"),
    )),
    Category("approvals", "Approvals", "Approval requests waiting and decided (from the database)", (
        Metric("simpletuner_approval_requests_pending", "gauge", "Approval requests waiting for a decision"),
        Metric("simpletuner_approval_requests_by_status", "gauge", "Approval requests per status", ("status",)),
    )),
    Category("audit", "Audit", "Audit log activity (from the database)", (
        Metric("simpletuner_audit_log_entries_total", "counter", "Audit log entries"),
        Metric("simpletuner_audit_log_entries_24h", "gauge", "Audit log entries of the last 24 hours"),
    )),
    Category("health", "Health", "Uptime of the answering API process and the database round trip", (
        Metric("simpletuner_uptime_seconds", "gauge", "Seconds since this API process started"),
        Metric("simpletuner_health_database_latency_ms", "gauge", "Round trip of a trivial query, in milliseconds"),
    )),
    Category("circuit_breakers", "Circuit breakers", "State of each cloud provider's circuit breaker", (
        Metric("simpletuner_circuit_breaker_state", "gauge", "0 closed, 1 half-open, 2 open", ("provider",)),
        Metric("simpletuner_circuit_breaker_failures_total", "counter", "Failed calls to the provider",
               ("provider",)),
    )),
    Category("provider", "Providers", "Cost limits used and credit balance per provider", (
        Metric("simpletuner_cost_limit_percent_used", "gauge", "Spend of the current period against the "
               "provider's cost limit, in percent", ("provider",)),
        Metric("simpletuner_credit_balance_usd", "gauge", "Credit left at the provider, in USD", ("provider",)),
    )),
)
CATEGORY_IDS: tuple[str, ...] = tuple(c.id for c in CATEGORIES)

TEMPLATES: tuple[Template, ...] = (
    Template("minimal", "Minimal", "Lightweight job monitoring", ("jobs",)),
    Template("standard", "Standard", "Recommended default", ("jobs", "http", "health")),
    Template("security", "Security", "Security monitoring", ("jobs", "http", "rate_limits", "audit", "approvals")),
    Template("full", "Full", "Complete observability: every category", CATEGORY_IDS),
)
TEMPLATE_IDS: tuple[str, ...] = tuple(t.id for t in TEMPLATES)
DEFAULT_TEMPLATE = "standard"

_BY_ID = {c.id: c for c in CATEGORIES}
CATEGORY_OF: dict[str, str] = {m.name: c.id for c in CATEGORIES for m in c.metrics}
METRIC_NAMES: tuple[str, ...] = tuple(CATEGORY_OF)
HELP: dict[str, str] = {m.name: m.help for c in CATEGORIES for m in c.metrics}


def ordered(categories) -> tuple[str, ...]:
    """Known category ids in catalog order, once each; an unknown one is refused, named."""
    chosen = set(categories)
    unknown = sorted(chosen - set(CATEGORY_IDS))
    if unknown:
        raise InvalidInput(f"unknown metrics categor{'ies' if len(unknown) > 1 else 'y'} "
                           f"{', '.join(map(repr, unknown))} (known: {', '.join(CATEGORY_IDS)})")
    return tuple(c for c in CATEGORY_IDS if c in chosen)


def template(template_id: str) -> Template:
    for found in TEMPLATES:
        if found.id == template_id:
            return found
    raise NotFound(f"unknown metrics template {template_id!r} (known: {', '.join(TEMPLATE_IDS)})")


def template_of(categories) -> str | None:
    """The template whose categories are exactly these (None: a hand-picked set)."""
    chosen = set(categories)
    return next((t.id for t in TEMPLATES if set(t.categories) == chosen), None)


def metrics_of(categories) -> tuple[str, ...]:
    """The metric names the categories export, in catalog order."""
    return tuple(m.name for c in ordered(categories) for m in _BY_ID[c].metrics)


def describe_categories() -> list[dict]:
    return [{"id": c.id, "title": c.title, "description": c.description, "metrics": [
        {"name": m.name, "type": m.kind, "help": m.help, "labels": list(m.labels)} for m in c.metrics]}
        for c in CATEGORIES]


def describe_templates() -> list[dict]:
    return [{"id": t.id, "title": t.title, "description": t.description, "categories": list(t.categories)}
            for t in TEMPLATES]
