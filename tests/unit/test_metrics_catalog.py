"""The metrics catalog: the operations guide's categories, templates and metric names, and the checks
that refuse unknown categories and templates by name."""

from __future__ import annotations

import pytest

from activities.errors import InvalidInput, NotFound
from activities.observability import metrics_catalog as catalog
from activities.observability.metrics_config import DEFAULT, MetricsConfigBody, proposed

GUIDE_NAMES = {
    "jobs": {"simpletuner_jobs_total", "simpletuner_jobs_by_status", "simpletuner_jobs_active",
             "simpletuner_cost_usd_total", "simpletuner_job_duration_seconds_avg"},
    "http": {"simpletuner_http_requests_total", "simpletuner_http_errors_total",
             "simpletuner_http_request_latency_ms_avg"},
    "rate_limits": {"simpletuner_rate_limit_violations_total", "simpletuner_rate_limit_tracked_clients"},
    "approvals": {"simpletuner_approval_requests_pending", "simpletuner_approval_requests_by_status"},
    "audit": {"simpletuner_audit_log_entries_total", "simpletuner_audit_log_entries_24h"},
    "health": {"simpletuner_uptime_seconds", "simpletuner_health_database_latency_ms"},
    "circuit_breakers": {"simpletuner_circuit_breaker_state", "simpletuner_circuit_breaker_failures_total"},
    "provider": {"simpletuner_cost_limit_percent_used", "simpletuner_credit_balance_usd"},
}


def test_every_name_of_the_guide_is_in_its_category():
    assert catalog.CATEGORY_IDS == tuple(GUIDE_NAMES)
    for category, names in GUIDE_NAMES.items():
        assert names <= set(catalog.metrics_of([category])), category
    histograms = {m.name: c.id for c in catalog.CATEGORIES for m in c.metrics if m.kind == "histogram"}
    assert histograms == {"simpletuner_job_duration_seconds": "jobs", "simpletuner_http_request_duration_seconds": "http"}
    assert len(catalog.METRIC_NAMES) == len(set(catalog.METRIC_NAMES))  # one category per name


def test_counters_end_in_total_and_nothing_else_does():
    for category in catalog.CATEGORIES:
        for metric in category.metrics:
            assert metric.name.endswith("_total") == (metric.kind == "counter"), metric.name
            assert metric.name.startswith("simpletuner_")


def test_labels_are_the_guides():
    labels = {m.name: m.labels for c in catalog.CATEGORIES for m in c.metrics}
    assert labels["simpletuner_jobs_by_status"] == ("status",)
    assert labels["simpletuner_http_requests_total"] == ("endpoint",)
    assert labels["simpletuner_http_errors_total"] == ("endpoint_status",)
    assert labels["simpletuner_http_request_duration_seconds"] == ("method", "route")
    assert labels["simpletuner_cost_limit_percent_used"] == ("provider",)
    assert labels["simpletuner_jobs_total"] == ()


def test_templates():
    assert {t.id: t.categories for t in catalog.TEMPLATES} == {
        "minimal": ("jobs",), "standard": ("jobs", "http", "health"),
        "security": ("jobs", "http", "rate_limits", "audit", "approvals"), "full": catalog.CATEGORY_IDS}
    assert catalog.template_of(["health", "jobs", "http"]) == "standard"  # order does not matter
    assert catalog.template_of(["jobs", "audit"]) is None
    assert DEFAULT.enabled is False and DEFAULT.template == "standard"


def test_unknown_template_and_category_are_refused_by_name():
    with pytest.raises(NotFound, match="unknown metrics template 'nope'.*minimal, standard, security, full"):
        catalog.template("nope")
    with pytest.raises(InvalidInput, match="unknown metrics category 'bogus'.*jobs, http"):
        catalog.ordered(["jobs", "bogus"])
    assert catalog.ordered(["health", "jobs", "health"]) == ("jobs", "health")


def test_a_change_applies_only_what_it_names():
    body = MetricsConfigBody.model_validate({"categories": ["audit", "jobs", "audit"]})
    assert proposed(DEFAULT, body).categories == ("jobs", "audit")
    assert proposed(DEFAULT, body).enabled is False
    on = proposed(DEFAULT, MetricsConfigBody.model_validate({"enabled": True}))
    assert (on.enabled, on.categories) == (True, DEFAULT.categories)
    full = proposed(DEFAULT, MetricsConfigBody.model_validate({"template": "full"}))
    assert full.categories == catalog.CATEGORY_IDS and full.template == "full"
    same = proposed(DEFAULT, MetricsConfigBody.model_validate({"template": "minimal", "categories": ["jobs"]}))
    assert same.categories == ("jobs",)
    with pytest.raises(InvalidInput, match="differ from those of template 'minimal'"):
        proposed(DEFAULT, MetricsConfigBody.model_validate({"template": "minimal", "categories": ["http"]}))


@pytest.mark.parametrize("body", [{"categories": ["bogus"]}, {"categories": []}, {"template": "huge"},
                                  {"enabled": 1}, {"enabled": "yes"}, {"extra": True}])
def test_bad_bodies_are_refused(body):
    with pytest.raises(ValueError):
        MetricsConfigBody.model_validate(body)
