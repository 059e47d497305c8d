"""The figures the export reads from the database at scrape time, on SQLite and PostgreSQL: jobs by
status, in flight, cost, run time (average and histogram), approvals, audit entries, cost limits; the
configuration row; only the enabled categories exported; promtool reads the text; and a scrape over
10,000 jobs stays quick."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from sqlalchemy import insert
from sqlmodel import select

from activities.db.models import AuditEntry, Job, utcnow
from activities.db.models_approvals import ApprovalRequest
from activities.db.models_providers import ProviderConfig
from activities.errors import NotFound
from activities.observability import metrics_catalog as catalog
from activities.observability import metrics_config
from activities.observability.metrics_config import Current, MetricsConfigBody
from activities.observability.metrics_export import export
from tests.promtool import metric_problems

NOW = utcnow()


def _job(n: int, status: str, *, cost: float | None = None, ran: float | None = None, target: str = "worker",
         **extra) -> dict:
    started = NOW - timedelta(hours=2)
    return dict(id=f"j{n}", owner_id="u1", owner_name="ann", config_name="tiny", target=target, worker_labels={},
                request_hash="h", status=status, outputs=[], cost_usd=cost, created_at=NOW - timedelta(minutes=n),
                updated_at=NOW, started_at=started if ran is not None else None,
                finished_at=started + timedelta(seconds=ran) if ran is not None else None, warnings=[], **extra)


def _approval(n: int, status: str) -> dict:
    return dict(id=f"a{n}", job_id=f"j{n}", user_id="u1", username="ann", config_name="tiny", rule_name="r",
                reason="why", required_level="lead", status=status, created_at=NOW, expires_at=NOW + timedelta(days=1))


def _samples(text: str) -> dict[str, float]:
    """``name{labels}`` -> value for every sample line."""
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line and not line.startswith("#")}


@pytest.fixture
def populated(db):
    rows = [_job(1, "completed", cost=10.5, ran=30), _job(2, "completed", cost=4.25, ran=600),
            _job(3, "failed", cost=0.25, ran=7200), _job(4, "cancelled"), _job(5, "running"), _job(6, "queued"),
            _job(7, "pending_approval"), _job(8, "pending"), _job(9, "running")]
    db.execute(insert(Job), rows)
    db.execute(insert(ApprovalRequest), [_approval(7, "pending"), _approval(1, "approved"), _approval(2, "approved"),
                                         _approval(3, "rejected")])
    db.add_all([AuditEntry(actor="admin", action="x", target_type="t", created_at=NOW - timedelta(hours=h))
                for h in (1, 5, 23, 30, 100)])
    db.add(ProviderConfig(provider="worker", cost_limit_enabled=True, cost_limit_amount=100.0))
    db.add(ProviderConfig(provider="local", cost_limit_enabled=False, cost_limit_amount=5.0))
    db.commit()
    return db


ALL = Current(enabled=True, categories=catalog.CATEGORY_IDS)


def test_database_figures(populated):
    found = _samples(export(populated, ALL, uptime_seconds=12.5).text)
    assert found["simpletuner_jobs_total"] == 9
    assert found['simpletuner_jobs_by_status{status="completed"}'] == 2
    assert found['simpletuner_jobs_by_status{status="running"}'] == 2
    assert found['simpletuner_jobs_by_status{status="pending_approval"}'] == 1
    assert found['simpletuner_jobs_by_status{status="failed"}'] == 1
    assert found["simpletuner_jobs_active"] == 5  # pending, pending_approval, queued and two running
    assert found["simpletuner_cost_usd_total"] == pytest.approx(15.0)
    assert found["simpletuner_job_duration_seconds_avg"] == pytest.approx((30 + 600 + 7200) / 3, abs=0.01)
    assert found['simpletuner_job_duration_seconds_bucket{le="60"}'] == 1
    assert found['simpletuner_job_duration_seconds_bucket{le="900"}'] == 2
    assert found['simpletuner_job_duration_seconds_bucket{le="3600"}'] == 2
    assert found['simpletuner_job_duration_seconds_bucket{le="7200"}'] == 3
    assert found['simpletuner_job_duration_seconds_bucket{le="+Inf"}'] == 3
    assert found["simpletuner_job_duration_seconds_count"] == 3
    assert found["simpletuner_job_duration_seconds_sum"] == pytest.approx(7830, abs=0.01)
    assert found["simpletuner_approval_requests_pending"] == 1
    assert found['simpletuner_approval_requests_by_status{status="approved"}'] == 2
    assert found['simpletuner_approval_requests_by_status{status="expired"}'] == 0
    assert found["simpletuner_audit_log_entries_total"] == 5
    assert found["simpletuner_audit_log_entries_24h"] == 3
    # worker: 15.00 spent this month (10.5 + 4.25 + 0.25) against a 100.00 limit
    assert found['simpletuner_cost_limit_percent_used{provider="worker"}'] == pytest.approx(15.0, abs=0.1)
    assert not any('provider="local"' in key for key in found)  # its limit is off: no made-up figure
    assert found["simpletuner_uptime_seconds"] == 12.5
    assert found["simpletuner_health_database_latency_ms"] >= 0
    assert not any(key.startswith(("simpletuner_circuit_breaker", "simpletuner_credit_balance")) for key in found)


def test_only_enabled_categories_are_exported(populated):
    minimal = export(populated, Current(enabled=True, categories=("jobs",)), 1.0)
    assert set(minimal.metrics) == set(catalog.metrics_of(["jobs"]))
    names = set(re.findall(r"^# TYPE (\S+)", minimal.text, re.M))
    assert names == set(catalog.metrics_of(["jobs"]))
    security = export(populated, Current(enabled=True, categories=catalog.template("security").categories), 1.0)
    assert "simpletuner_audit_log_entries_total" in security.metrics
    assert "simpletuner_uptime_seconds" not in security.text
    assert "simpletuner_rate_limit_violations_total 0.0" in security.text


def test_every_family_of_the_catalog_is_in_the_full_export(populated):
    full = export(populated, ALL, 1.0)
    assert set(re.findall(r"^# TYPE (\S+)", full.text, re.M)) == set(catalog.METRIC_NAMES)
    assert full.metrics == catalog.METRIC_NAMES


def test_promtool_reads_the_full_export(populated):
    assert metric_problems(export(populated, ALL, 3.0).text) == []


def test_configuration_is_stored_and_audited(db):
    assert metrics_config.get(db) == metrics_config.DEFAULT
    saved = metrics_config.put(db, MetricsConfigBody.model_validate({"enabled": True, "categories": ["audit", "jobs"]}),
                               "admin", "10.0.0.1")
    db.commit()
    again = metrics_config.get(db)
    assert (again.enabled, again.categories, again.template, again.updated_by) == (True, ("jobs", "audit"), None, "admin")
    assert saved.categories == again.categories
    metrics_config.apply_template(db, "security", "root", None)
    db.commit()
    after = metrics_config.get(db)
    assert (after.enabled, after.template, after.updated_by) == (True, "security", "root")
    with pytest.raises(NotFound):
        metrics_config.apply_template(db, "everything", "root", None)
    db.rollback()
    actions = [(e.action, e.details["categories"]) for e in db.exec(select(AuditEntry).order_by(AuditEntry.id))]
    assert actions == [("metrics.config_changed", ["jobs", "audit"]),
                       ("metrics.template_applied", list(catalog.template("security").categories))]


def test_a_scrape_over_ten_thousand_jobs_is_quick(db):
    statuses = ("completed", "failed", "cancelled", "running", "queued", "pending")
    db.execute(insert(Job), [_job(n, statuses[n % len(statuses)], cost=1.0, ran=float(n % 5000)
                                  if n % len(statuses) < 3 else None) for n in range(10_000)])
    db.execute(insert(AuditEntry), [dict(actor="a", action="x", target_type="t", details={}, created_at=NOW)
                                    for _ in range(10_000)])
    db.commit()
    export(db, ALL, 1.0)  # warm: the first statement compiles
    started = time.perf_counter()
    found = _samples(export(db, ALL, 1.0).text)
    took = time.perf_counter() - started
    assert found["simpletuner_jobs_total"] == 10_000
    assert found["simpletuner_job_duration_seconds_count"] == 5001
    print(f"scrape over 10,000 jobs and 10,000 audit entries: {took * 1000:.1f} ms")
    assert took < 0.5, f"a scrape over 10,000 jobs took {took:.3f}s"
