"""What each API process counts itself: HTTP answers (a latency histogram by method and route
template, and errors by status) and rate-limit refusals.

With ``PROMETHEUS_MULTIPROC_DIR`` set before the process started (``simpletuner server`` prepares
the directory: ``metrics_dir.py``), prometheus-client keeps these in memory-mapped files there and a
scrape adds up every process of the host that writes to it; otherwise they live in this process's
memory and each API process is scraped as its own target. Figures that live in the database are not
here: they are read at scrape time (``metrics_database.py``), the same from every replica.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, values
from prometheus_client.multiprocess import MultiProcessCollector

from activities.ratelimit import violations

disable_created_metrics()  # no *_created series: the multiprocess mode has none either

REGISTRY = CollectorRegistry(auto_describe=True)
HTTP_DURATION = "simpletuner_http_request_duration_seconds"
HTTP_ERRORS = "simpletuner_http_errors_total"
RATE_LIMIT_VIOLATIONS = "simpletuner_rate_limit_violations_total"
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

_duration = Histogram(HTTP_DURATION, "Time to answer", ("method", "route"), buckets=HTTP_BUCKETS,
                      registry=REGISTRY)
_errors = Counter(HTTP_ERRORS, "Answers with status 400 or above, by method, route and status",
                  ("endpoint_status",), registry=REGISTRY)
_violations = Counter(RATE_LIMIT_VIOLATIONS, "Requests refused by a rate limit", registry=REGISTRY)

_children: dict[tuple[str, str], object] = {}  # label lookups cost more than the observation itself
_error_children: dict[str, object] = {}


def multiprocess() -> bool:
    """prometheus-client writes to ``PROMETHEUS_MULTIPROC_DIR`` (decided when it was first imported)."""
    return values.ValueClass is not values.MutexValue


def observe_http(method: str, route: str, status: int, seconds: float) -> None:
    child = _children.get((method, route))
    if child is None:
        child = _children[(method, route)] = _duration.labels(method, route)
    child.observe(seconds)  # type: ignore[attr-defined]
    if status >= 400:
        key = f"{method}_{route}_{status}"
        error = _error_children.get(key)
        if error is None:
            error = _error_children[key] = _errors.labels(key)
        error.inc()  # type: ignore[attr-defined]


def count_rate_limit_violation(_violation: object = None) -> None:
    """One request refused by a rate limit (the rate limiter tells its listeners of each)."""
    _violations.inc()


violations.VIOLATION_LISTENERS.append(count_rate_limit_violation)


def families() -> list:
    """The per-process families: of every process writing to the multiprocess directory, or of this one."""
    if multiprocess():
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=os.environ["PROMETHEUS_MULTIPROC_DIR"])
        return list(registry.collect())
    return list(REGISTRY.collect())
