"""deploy/: the Prometheus configuration and alert rules pass promtool, the alerts fire on the series
they are about (promtool's rule tests), and every expression of the rules and of the Grafana
dashboard parses and names only metrics the export really has."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import insert

from activities.db.engine import init_db, make_engine, session as open_session
from activities.db.models import Job, utcnow
from activities.observability import metrics_catalog as catalog
from activities.observability import process_metrics
from activities.observability.metrics_config import Current
from activities.observability.metrics_export import export
from tests.promtool import run

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMETHEUS_YML = DEPLOY / "prometheus" / "prometheus.yml"
ALERTS_YML = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "simpletuner-dashboard.json"
NAME = re.compile(r"\b(simpletuner_[a-z0-9_]+|up)\b")


@pytest.fixture(scope="module")
def exported_names(tmp_path_factory) -> set[str]:
    """Every metric name a full export holds: sample names, and family names (also those without series)."""
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('deploy') / 'app.db'}")
    init_db(engine)
    process_metrics.observe_http("GET", "/api/cloud/jobs/{job_id}", 500, 0.02)
    with open_session(engine) as session:
        started = utcnow() - timedelta(hours=1)
        session.execute(insert(Job), [dict(id="j1", owner_id="u", owner_name="u", config_name="c", target="worker",
                                           worker_labels={}, request_hash="h", status="completed", outputs=[],
                                           warnings=[], started_at=started, finished_at=started + timedelta(minutes=5))])
        session.commit()
        text = export(session, Current(True, catalog.CATEGORY_IDS), 1.0, tracked_clients=2).text
    engine.dispose()
    samples = {re.split(r"[{ ]", line, maxsplit=1)[0] for line in text.splitlines() if line and line[0] != "#"}
    return samples | set(re.findall(r"^# TYPE (\S+)", text, re.M)) | {"up"}


def _alert_rules() -> list[dict]:
    return [rule for group in yaml.safe_load(ALERTS_YML.read_text())["groups"] for rule in group["rules"]]


def _dashboard_exprs() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] if panel["type"] != "row"
            for target in panel["targets"]]


def test_promtool_accepts_the_configuration_and_the_rules():
    config = run("check", "config", str(PROMETHEUS_YML))
    assert config.returncode == 0, config.stdout + config.stderr
    assert "1 rule files found" in config.stdout
    rules = run("check", "rules", str(ALERTS_YML))
    assert rules.returncode == 0, rules.stdout + rules.stderr


def test_rules_and_panels_name_only_exported_metrics(exported_names):
    used = {(where, name) for where, expr in [(r["alert"], r["expr"]) for r in _alert_rules()] + _dashboard_exprs()
            for name in NAME.findall(expr)}
    assert {name for _, name in used} >= {"simpletuner_http_requests_total", "simpletuner_jobs_by_status",
                                          "simpletuner_cost_limit_percent_used"}
    assert sorted((where, name) for where, name in used if name not in exported_names) == []


def test_every_panel_expression_parses(tmp_path):
    """As recording rules: promtool parses each PromQL expression of the dashboard."""
    exprs = _dashboard_exprs()
    assert len(exprs) >= 20 and all(expr.strip() for _, expr in exprs)
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:panel_{n}", "expr": expr} for n, (_, expr) in enumerate(exprs)]}]}
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump(rules))
    checked = run("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["templating"]["list"][0]["type"] == "datasource"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


ALERT_TESTS = """
rule_files: [{alerts}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'simpletuner_cost_limit_percent_used{{provider="worker", instance="a"}}'
        values: '85 91 92 93 94 95 96 97 98 99'
      - series: 'simpletuner_cost_limit_percent_used{{provider="worker", instance="b"}}'
        values: '85 91 92 93 94 95 96 97 98 99'
      - series: 'simpletuner_cost_limit_percent_used{{provider="local", instance="a"}}'
        values: '10x10'
      - series: 'simpletuner_approval_requests_pending{{instance="a"}}'
        values: '12x90'
      - series: 'up{{job="simpletuner-api", instance="a"}}'
        values: '1 1 0 0 0 0 0'
      - series: 'simpletuner_jobs_by_status{{status="failed", instance="a"}}'
        values: '0 1 2 3 4 5 6 7 8'
    alert_rule_test:
      - eval_time: 8m
        alertname: SimpleTunerCostLimitNearlyReached
        exp_alerts:
          - exp_labels: {{severity: warning, provider: worker}}
            exp_annotations:
              summary: "Provider worker has used 98.0% of its cost limit"
      - eval_time: 3m
        alertname: SimpleTunerCostLimitNearlyReached
        exp_alerts: []
      - eval_time: 5m
        alertname: SimpleTunerApiDown
        exp_alerts:
          - exp_labels: {{severity: critical, job: simpletuner-api, instance: a}}
            exp_annotations:
              summary: "API target a does not answer the metrics scrape"
              description: "Check the process, and that the export is enabled (a disabled export answers 404)."
      - eval_time: 30m
        alertname: SimpleTunerApprovalsPilingUp
        exp_alerts: []
      - eval_time: 70m
        alertname: SimpleTunerApprovalsPilingUp
        exp_alerts:
          - exp_labels: {{severity: warning}}
            exp_annotations:
              summary: "12 approval requests have been waiting for an hour or more"
      - eval_time: 8m
        alertname: SimpleTunerJobsFailing
        exp_alerts:
          - exp_labels: {{severity: warning}}
            exp_annotations:
              summary: "8 jobs failed in the last hour"
  - interval: 1m
    input_series:
      - series: 'simpletuner_http_requests_total{{endpoint="POST_/api/queue/submit", instance="a"}}'
        values: '0+100x30'
      - series: 'simpletuner_http_errors_total{{endpoint_status="POST_/api/queue/submit_503", instance="a"}}'
        values: '0+10x30'
      - series: 'simpletuner_http_errors_total{{endpoint_status="POST_/api/queue/submit_403", instance="a"}}'
        values: '0+50x30'
    alert_rule_test:
      - eval_time: 20m
        alertname: SimpleTunerHighServerErrorRatio
        exp_alerts:
          - exp_labels: {{severity: warning}}
            exp_annotations:
              summary: "More than 5% of API answers are server errors"
"""


def test_alerts_fire_on_what_they_are_about(tmp_path):
    """promtool's rule tests: a cost limit above 90% (each provider once, whatever the number of API
    targets), a target down, approvals waiting an hour, failures piling up, a 10% server-error ratio (403s
    are not server errors)."""
    path = tmp_path / "alerts_test.yml"
    path.write_text(ALERT_TESTS.format(alerts=json.dumps(str(ALERTS_YML))))
    tested = run("test", "rules", str(path))
    assert tested.returncode == 0, tested.stdout + tested.stderr
