"""The Prometheus export over REST, against two real API processes sharing one database and one
multiprocess metrics directory: off by default (404), ``auth.bypass_paths`` opens only the scrape
path, the configuration routes need ``admin.config`` and refuse unknown categories and templates,
previews change nothing, the output follows the configured categories and passes promtool, and the
HTTP counters of both processes add up in either's scrape, labelled by route template."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.stack import Stack
from tests.e2e.test_users_and_auth import bearer_for, make_user
from tests.promtool import metric_problems

pytestmark = pytest.mark.e2e

SCRAPE = "/api/cloud/metrics/prometheus"
JOB_ROUTE = "GET_/api/cloud/jobs/{job_id}"


class Metrics:
    def __init__(self, stack: Stack, replica_url: str, metrics_dir) -> None:
        self.stack, self.replica_url, self.metrics_dir = stack, replica_url, metrics_dir
        self.replica = httpx.Client(base_url=replica_url, timeout=15.0, trust_env=False,
                                    headers={"Authorization": f"Bearer {stack.admin_token}"})


@pytest.fixture(scope="module")
def metrics(temporal, tmp_path_factory) -> Iterator[Metrics]:
    root = tmp_path_factory.mktemp("metrics-api")
    metrics_dir = root / "prometheus-multiproc"
    metrics_dir.mkdir()
    (metrics_dir / "counter_4242424.db").write_bytes(b"left by a previous run")  # wiped at start
    (metrics_dir / "notes.txt").write_text("not prometheus-client's: kept")
    stack = Stack(temporal, root / "stack", extra_env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})
    stack.enterprise_config.write_text('auth:\n  bypass_paths:\n    - "/api/cloud/metrics/prometheus"\n')
    try:
        stack.start_api()
        fresh = stack.expect(stack.client.get("/api/cloud/metrics/config"), 200)
        assert (fresh["enabled"], fresh["template"], fresh["updated_at"]) == (False, "standard", None), fresh
        for _ in range(3):  # counted by the first process before the second one starts and joins the directory
            stack.expect(stack.anon.head("/api/cloud/health/live"), 200)
        _, replica_url = stack.start_api_replica()
        yield Metrics(stack, replica_url, metrics_dir)
    finally:
        stack.stop_all()


def _samples(text: str) -> dict[str, float]:
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line and not line.startswith("#")}


def _scrape(client: httpx.Client) -> str:
    answer = client.get(SCRAPE)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return answer.text


def test_disabled_answers_404_and_the_bypass_opens_only_the_scrape_path(metrics):
    """(Each test sets the state it needs: they may run in any order, on more than one stack.)"""
    stack = metrics.stack
    assert not (metrics.metrics_dir / "counter_4242424.db").exists()  # the first process wiped the last run's
    assert (metrics.metrics_dir / "notes.txt").exists()
    stack.expect(stack.client.put("/api/cloud/metrics/config", json={"enabled": False}), 200)
    off = stack.anon.get(SCRAPE)
    assert off.status_code == 404 and "disabled" in off.json()["detail"], off.text
    assert stack.anon.get("/api/cloud/metrics/config").status_code == 401  # only the listed path is open
    assert stack.anon.get("/api/cloud/metrics/preview").status_code == 401
    make_user(stack, "vic", "viewer")
    viewer = bearer_for(stack, "vic")
    assert viewer.get("/api/cloud/metrics/config").status_code == 403
    assert viewer.put("/api/cloud/metrics/config", json={"enabled": True}).status_code == 403
    refused = viewer.get(SCRAPE)  # credentials that are presented are checked, bypass or not
    assert refused.status_code == 403 and "admin.config" in refused.json()["detail"]


def test_unknown_categories_and_templates_are_refused(metrics):
    client = metrics.stack.client
    bad = client.put("/api/cloud/metrics/config", json={"categories": ["jobs", "gpus"]})
    assert bad.status_code == 422 and "categories.1" in bad.json()["detail"] and "'jobs'" in bad.json()["detail"]
    unknown = client.post("/api/cloud/metrics/config/apply-template/everything")
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "unknown metrics template 'everything' (known: minimal, standard, security, full)"
    mixed = client.put("/api/cloud/metrics/config", json={"template": "minimal", "categories": ["http"]})
    assert mixed.status_code == 422 and "template 'minimal'" in mixed.json()["detail"]
    assert client.put("/api/cloud/metrics/config", json={"enabled": "yes"}).status_code == 422
    templates = metrics.stack.expect(client.get("/api/cloud/metrics/config/templates"), 200)["templates"]
    assert [(t["id"], t["categories"]) for t in templates][:2] == [("minimal", ["jobs"]),
                                                                  ("standard", ["jobs", "http", "health"])]
    categories = metrics.stack.expect(client.get("/api/cloud/metrics/config/categories"), 200)["categories"]
    assert [c["id"] for c in categories] == ["jobs", "http", "rate_limits", "approvals", "audit", "health",
                                             "circuit_breakers", "provider"]
    assert metrics.stack.sql("SELECT count(*) AS n FROM auditentry WHERE action LIKE 'metrics.%' AND "
                             "details LIKE '%gpus%'")[0]["n"] == 0  # nothing refused was saved


def test_previews_change_nothing(metrics):
    stack = metrics.stack
    before = stack.expect(stack.client.get("/api/cloud/metrics/config"), 200)
    audited = stack.sql("SELECT count(*) AS n FROM auditentry")[0]["n"]
    scraped = stack.anon.get(SCRAPE).status_code
    saved = stack.expect(stack.client.get("/api/cloud/metrics/preview"), 200)
    assert saved["enabled"] == before["enabled"] and saved["categories"] == before["categories"]
    assert "# TYPE simpletuner_jobs_total counter" in saved["text"] and "simpletuner_uptime_seconds" in saved["text"]
    proposed = stack.expect(stack.client.post("/api/cloud/metrics/config/preview",
                                              json={"enabled": True, "template": "minimal"}), 200)
    assert (proposed["enabled"], proposed["template"]) == (True, "minimal")
    assert "simpletuner_jobs_by_status" in proposed["metrics"]
    assert "simpletuner_http_requests_total" not in proposed["text"]
    assert stack.expect(stack.client.get("/api/cloud/metrics/config"), 200) == before
    assert stack.sql("SELECT count(*) AS n FROM auditentry")[0]["n"] == audited
    assert stack.anon.get(SCRAPE).status_code == scraped


def test_the_scrape_follows_the_configuration(metrics):
    stack = metrics.stack
    changes = len(stack.sql("SELECT id FROM auditentry WHERE action LIKE 'metrics.%'"))
    stack.put_config("metrics-cfg", steps=1)
    stack.submit(config_name="metrics-cfg", target="local")  # no worker host here: it stays pending
    on = stack.expect(stack.client.put("/api/cloud/metrics/config", json={"enabled": True, "template": "full"}), 200)
    assert (on["enabled"], on["template"], on["updated_by"]) == (True, "full", "admin")
    full = _scrape(stack.anon)  # no credentials: the path is in auth.bypass_paths
    found = _samples(full)
    assert found["simpletuner_jobs_total"] == 1 and found['simpletuner_jobs_by_status{status="pending"}'] == 1
    assert found["simpletuner_jobs_active"] == 1
    assert found["simpletuner_audit_log_entries_total"] >= 2  # the submission's and this change's
    assert set(re.findall(r"^# TYPE (simpletuner_\w+)", full, re.M)) >= {
        "simpletuner_rate_limit_violations_total", "simpletuner_circuit_breaker_state",
        "simpletuner_credit_balance_usd", "simpletuner_http_request_duration_seconds"}
    assert metric_problems(full) == []
    assert _scrape(metrics.replica).count("# TYPE") == full.count("# TYPE")  # every replica serves the config

    stack.expect(stack.client.post("/api/cloud/metrics/config/apply-template/minimal"), 200)
    minimal = _scrape(stack.client)
    assert set(re.findall(r"^# TYPE (\S+)", minimal, re.M)) == {
        "simpletuner_jobs_total", "simpletuner_jobs_by_status", "simpletuner_jobs_active",
        "simpletuner_cost_usd_total", "simpletuner_job_duration_seconds_avg", "simpletuner_job_duration_seconds"}
    stack.expect(stack.client.put("/api/cloud/metrics/config", json={"enabled": False}), 200)
    assert metrics.replica.get(SCRAPE).status_code == 404
    actions = [r["action"] for r in stack.sql("SELECT action FROM auditentry WHERE action LIKE 'metrics.%' ORDER BY id")]
    assert actions[changes:] == ["metrics.config_changed", "metrics.template_applied", "metrics.config_changed"]


def test_http_counts_of_both_processes_add_up_by_route_template(metrics):
    stack = metrics.stack
    stack.expect(stack.client.put("/api/cloud/metrics/config", json={"enabled": True, "template": "standard"}), 200)
    before = _samples(_scrape(stack.client))
    ids = [uuid.uuid4().hex for _ in range(7)]
    for job_id in ids[:4]:
        assert stack.client.get(f"/api/cloud/jobs/{job_id}").status_code == 404
    for job_id in ids[4:]:
        assert metrics.replica.get(f"/api/cloud/jobs/{job_id}").status_code == 404
    assert metrics.replica.get(f"/no/such/{ids[0]}").status_code == 404
    for text in (_scrape(stack.client), _scrape(metrics.replica)):  # the same sums from either process
        after = _samples(text)
        requests = f'simpletuner_http_requests_total{{endpoint="{JOB_ROUTE}"}}'
        errors = f'simpletuner_http_errors_total{{endpoint_status="{JOB_ROUTE}_404"}}'
        assert after[requests] - before.get(requests, 0) == 7
        assert after[errors] - before.get(errors, 0) == 7
        count = 'simpletuner_http_request_duration_seconds_count{method="GET",route="/api/cloud/jobs/{job_id}"}'
        assert after[count] == after[requests]
        assert after['simpletuner_http_errors_total{endpoint_status="GET_<unmatched>_404"}'] >= 1
        assert after['simpletuner_http_requests_total{endpoint="HEAD_/api/cloud/health/live"}'] == 3  # kept
        assert not any(job_id in text for job_id in ids)
        assert metric_problems(text) == []
