"""The Prometheus text the scrape endpoint answers: the enabled categories' families, from the
database (read now) and from the API processes (``process_metrics``), in the text format 0.0.4.

The HTTP figures named by the operations guide derive from the latency histogram: requests per
``endpoint`` (``METHOD_/route/{template}``) are its counts, their average latency its sum over its
count, so a request costs one histogram observation (and one counter step when it failed)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlmodel import Session

from activities.observability import metrics_catalog as catalog
from activities.observability import process_metrics
from activities.observability.metrics_catalog import HELP
from activities.observability.metrics_config import Current
from activities.observability.metrics_database import READERS

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # the format Prometheus 2 and promtool read


@dataclass(frozen=True)
class Export:
    text: str
    metrics: tuple[str, ...]  # the family names it holds


class _Families:
    """A collector handing over families already read (a scrape-time registry renders them)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


def _http(process: dict[str, Metric]) -> list[Metric]:
    requests = CounterMetricFamily("simpletuner_http_requests_total", HELP["simpletuner_http_requests_total"],
                                   labels=["endpoint"])
    latency = GaugeMetricFamily("simpletuner_http_request_latency_ms_avg",
                                HELP["simpletuner_http_request_latency_ms_avg"], labels=["endpoint"])
    histogram = process.get(process_metrics.HTTP_DURATION)
    counts: dict[str, float] = defaultdict(float)
    sums: dict[str, float] = defaultdict(float)
    for sample in histogram.samples if histogram else ():
        endpoint = f"{sample.labels.get('method')}_{sample.labels.get('route')}"
        if sample.name.endswith("_count"):
            counts[endpoint] += sample.value
        elif sample.name.endswith("_sum"):
            sums[endpoint] += sample.value
    for endpoint in sorted(counts):
        requests.add_metric([endpoint], counts[endpoint])
        if counts[endpoint]:
            latency.add_metric([endpoint], round(sums[endpoint] / counts[endpoint] * 1000, 3))
    errors = process.get("simpletuner_http_errors") or CounterMetricFamily(
        "simpletuner_http_errors_total", HELP["simpletuner_http_errors_total"], labels=["endpoint_status"])
    return [requests, errors, latency, histogram or _empty_histogram()]


def _empty_histogram() -> Metric:
    return Metric(process_metrics.HTTP_DURATION, HELP[process_metrics.HTTP_DURATION], "histogram")


def _rate_limits(process: dict[str, Metric], tracked_clients: int | None) -> list[Metric]:
    violations = process.get("simpletuner_rate_limit_violations") or CounterMetricFamily(
        "simpletuner_rate_limit_violations_total", HELP["simpletuner_rate_limit_violations_total"], value=0)
    tracked = GaugeMetricFamily("simpletuner_rate_limit_tracked_clients",
                                HELP["simpletuner_rate_limit_tracked_clients"], labels=[])
    if tracked_clients is not None:
        tracked.add_metric([], tracked_clients)
    return [violations, tracked]


def families(session: Session, categories: Iterable[str], uptime_seconds: float,
             tracked_clients: int | None = None) -> list[Metric]:
    """The families of ``categories``, in catalog order; database figures are read now."""
    chosen = catalog.ordered(categories)
    process = {f.name: f for f in process_metrics.families()} if {"http", "rate_limits"} & set(chosen) else {}
    found: list[Metric] = []
    for category in chosen:
        if category == "http":
            found += _http(process)
        elif category == "rate_limits":
            found += _rate_limits(process, tracked_clients)
        else:
            if category == "health":
                found.append(GaugeMetricFamily("simpletuner_uptime_seconds", HELP["simpletuner_uptime_seconds"],
                                               value=round(uptime_seconds, 3)))
            found += READERS[category](session)
    return found


def render(found: list[Metric]) -> Export:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(found))
    names = tuple(f.name + "_total" if f.type == "counter" else f.name for f in found)
    return Export(generate_latest(registry).decode(), names)


def export(session: Session, config: Current, uptime_seconds: float, tracked_clients: int | None = None) -> Export:
    return render(families(session, config.categories, uptime_seconds, tracked_clients))


def preview(config: Current, found: Export) -> dict:
    """The preview answer: the configuration and what it exports."""
    return {"enabled": config.enabled, "categories": list(config.categories), "template": config.template,
            "metrics": list(found.metrics), "content_type": CONTENT_TYPE, "text": found.text}
