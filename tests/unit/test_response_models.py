"""The response models tell the truth and change nothing: each domain answer, passed through the
model its routes declare, serializes to the very JSON it did as a bare dict (same fields, values,
number types and order), so no field vanishes and no 5 becomes 5.0."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import TypeAdapter
from sqlmodel import Session

from activities.audit import reads
from activities.capacity import claims, queue_view, workers
from activities.db.engine import init_db, make_engine, session as open_session
from activities.db.models import ApiKey, AuditEntry, Job, PermissionOverride, TrainingConfig, User, UserLevel, Worker
from activities.db.models_approvals import ApprovalRequest, ApprovalRule, NotificationChannel
from activities.db.models_credentials import ProviderCredential
from activities.db.models_dispatch import JobAttempt
from activities.db.models_orgs import Organization, OrgMember, Quota, Team, TeamMember
from activities.db.models_providers import ProviderConfig
from activities.db.models_queue import Admission, QueueSettings
from activities.db.models_rules import ResourceRule
from activities.db.models_sso import ExternalAuthProvider
from activities.governance import approval_rules, approvals, cost_limits, quotas, resource_rules
from activities.governance.approvals_overview import mine
from activities.identity import api_keys, org_members, orgs, users
from activities.identity.principals import Principal
from activities.identity.sso import providers
from activities.jobs import configs, jobs
from activities.notify import channels
from activities.paging import PageRequest
from activities.secrets import credentials
from activities.secrets.credentials import CredentialRef
from activities.settings import load_settings
from api.routers.agents import _registration_answer
from api.schemas import (agents, approval_rules as rule_answers, approvals as approval_answers, audit, auth,
                         channels as channel_answers, configs as config_answers, costs,
                         credentials as credential_answers, jobs as job_answers, orgs as org_answers, queue,
                         quotas as quota_answers, resource_rules as rr, sso, users as user_answers,
                         workers as worker_answers)

T0 = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=timezone.utc)


def same_answer(model: Any, raw: dict) -> None:
    """What the route sends through ``model`` equals what it sent for the bare dict (``-> dict``)."""
    before = TypeAdapter(dict).dump_json(raw)
    adapter = TypeAdapter(model)
    assert adapter.dump_json(adapter.validate_python(raw)) == before


@pytest.fixture
def session(tmp_path) -> Session:
    engine = make_engine(f"sqlite:///{tmp_path / 'app.db'}")
    init_db(engine)
    with open_session(engine) as s:
        yield s
    engine.dispose()


def _job(**overrides: Any) -> Job:
    fields = dict(id="j_1", owner_id="u_1", owner_name="ann", config_name="tiny", target="worker",
                  worker_labels={"gpu_type": "a100*"}, gpu_count=2, priority=30, idempotency_key="k1", request_hash="h",
                  status="running", attempt=1, agent_id="w_1", agent_name="gpu-1", hardware_type="a100-80gb",
                  progress={"step": 3, "loss": 0.25, "phase": "train"}, team_id="t_1", org_id="o_1",
                  cost_estimate_usd=12.5, warnings=["daily_jobs quota of team ml would be exceeded"],
                  outputs=[{"name": "model/weights.bin", "size": 10, "sha256": "ab" * 32}], created_at=T0,
                  updated_at=T0, started_at=T0)
    return Job(**{**fields, **overrides})


def _worker(**overrides: Any) -> Worker:
    fields = dict(id="w_1", name="gpu-1", labels={"gpu_type": "a100", "zone": "eu"}, token_hash="x", state="busy",
                  gpu_count=8, gpu_name="NVIDIA A100", gpu_vram_gb=80.0, accelerator_type="cuda",
                  hostname="node1", task_queue="gpu.abc", hardware_type="a100-80gb", unhealthy_since=T0,
                  unhealthy_reason="left attempt 1 unstarted", current_job_id="j_1", registered_at=T0,
                  last_heartbeat=datetime.now(timezone.utc), created_at=T0)
    return Worker(**{**fields, **overrides})


def test_jobs():
    bare = _job(progress=None, outputs=[], warnings=None, gpu_count=None, priority=None, idempotency_key=None,
                started_at=None, team_id=None, org_id=None, cost_estimate_usd=None, status="pending", attempt=0)
    for job in (_job(), _job(cost_usd=3.25, gpu_hours=1.5, status="completed", finished_at=T0), bare):
        answer = jobs.to_dict(job, "http://api")
        same_answer(job_answers.Job, answer)
        same_answer(job_answers.Submitted, {"job_id": job.id, "status": job.status, "idempotent_replay": False,
                                            "job": answer})
    same_answer(job_answers.JobPage, {"jobs": [jobs.to_dict(_job())], "total": 1, "next_cursor": "eyJ"})


def test_workers_and_agents():
    for worker in (_worker(), _worker(gpu_vram_gb=None, unhealthy_since=None, last_heartbeat=None, registered_at=None,
                                      hostname=None, task_queue=None, current_job_id=None, labels={})):
        same_answer(worker_answers.Worker, workers.to_dict(worker, 120.0))
        state = SimpleNamespace(settings=load_settings({}))
        same_answer(agents.Registered, _registration_answer(state, worker))
    row = JobAttempt(job_id="j_1", attempt=2, dispatch_seq=1, task_queue="gpu.abc", agent_id="w_1", agent_name="gpu-1")
    same_answer(agents.Assignment, claims.assignment(_job(frozen_config={"name": "tiny", "gpu_count": 2}), row))
    same_answer(agents.Assignment, claims.assignment(_job(), row))


def test_configs_audit_and_rules():
    config = TrainingConfig(name="tiny", args={"lr": 0.001, "epochs": 3}, command=["{python}", "train.py"],
                            env={"SEED": "1"}, gpu_count=1, hardware_type="cpu", estimated_hours=0.5,
                            created_at=T0, updated_at=T0)
    same_answer(config_answers.TrainingConfig, configs.to_dict(config))
    entry = AuditEntry(id=7, actor="admin", action="quota.set", target_type="quota", target_id="q_1", ip="10.0.0.1",
                       details={"limit": 5, "was": None, "nested": {"a": [1, 2.5]}}, created_at=T0)
    same_answer(audit.AuditEntry, reads.to_dict(entry))
    rule = ApprovalRule(id="ar_1", name="expensive", condition="cost_exceeds", threshold="50", priority=10,
                        exempt_levels=["admin"], created_by="admin", created_at=T0, updated_at=T0)
    same_answer(rule_answers.ApprovalRule, approval_rules.to_dict(rule))
    same_answer(rule_answers.ConditionList, {"conditions": approval_rules.conditions()})
    resource = ResourceRule(id="rr_1", level="researcher", resource_type="hardware", pattern="a100*", action="deny",
                            created_at=T0)
    same_answer(rr.ResourceRule, resource_rules.to_dict(resource))


def test_approval_requests(session):
    decided = ApprovalRequest(id="apr_1", job_id="j_1", user_id="u_1", username="ann", config_name="tiny",
                              rule_id="ar_1", rule_name="expensive", reason="cost 60 > 50", required_level="lead",
                              cost_estimate_usd=60.0, status="approved", created_at=T0, expires_at=T0,
                              decided_at=T0, decided_by="lead", channel="rest", comment="ok")
    same_answer(approval_answers.ApprovalRequest, approvals.to_dict(decided))
    session.add(ApprovalRequest(id="apr_2", job_id="j_2", user_id="u_1", username="ann", config_name="tiny",
                                rule_name="first", reason="first job", required_level="lead", created_at=T0,
                                expires_at=T0 + timedelta(days=1)))
    session.commit()
    me = Principal(user_id="u_1", username="ann", levels=("lead",), permissions=frozenset({"admin.approve"}))
    same_answer(approval_answers.MyApprovals, mine(session, me, None, PageRequest()))
    same_answer(approval_answers.BulkResult, {"results": [
        {"request_id": "apr_1", "ok": True, "status": "approved"},
        {"request_id": "apr_9", "ok": False, "status_code": 404, "detail": "not found"}], "succeeded": 1, "failed": 1})


def test_users_and_auth(session):
    session.add(User(id="u_1", username="ann", email="ann@example.com", password_hash="x", created_at=T0,
                     last_login_at=T0))
    session.add(User(id="u_2", username="sso", auth_source="oidc:corp", created_at=T0))
    session.flush()
    session.add(UserLevel(user_id="u_1", level="researcher"))
    session.add(PermissionOverride(user_id="u_1", permission="job.priority.high", granted=True))
    session.commit()
    for user_id in ("u_1", "u_2"):
        user = users.to_dict(session, users.get(session, user_id))
        same_answer(user_answers.User, user)
        same_answer(auth.SessionLogin | auth.BearerLogin,
                    {"user": user, "csrf_token": "c", "csrf_header": "X-CSRF-Token", "expires_in": 86400})
        same_answer(auth.SessionLogin | auth.BearerLogin,
                    {"user": user, "access_token": "t", "token_type": "bearer", "expires_in": 86400})
    key = ApiKey(id="k_1", user_id="u_1", name="ci", key_hash="h", prefix="st_abcd", created_at=T0,
                 expires_at=T0 + timedelta(days=30))
    same_answer(auth.ApiKeyCreated, {**api_keys.to_dict(key), "key": "st_abcdef"})


def test_orgs_and_quotas(session):
    session.add(User(id="u_1", username="ann", created_at=T0))
    session.flush()
    session.add(UserLevel(user_id="u_1", level="researcher"))
    org = Organization(id="o_1", slug="acme", name="Acme", created_at=T0, updated_at=T0)
    team = Team(id="t_1", org_id="o_1", slug="ml", name="ML", description="models", created_at=T0, updated_at=T0)
    session.add(org)
    session.flush()
    session.add(team)
    session.flush()
    session.add_all([OrgMember(org_id="o_1", user_id="u_1", created_at=T0),
                     TeamMember(team_id="t_1", user_id="u_1", role="lead", created_at=T0),
                     Quota(id="q_1", scope="team", scope_id="t_1", quota_type="daily_jobs", limit_value=5.0),
                     Quota(id="q_2", scope="org", scope_id="o_1", quota_type="monthly_cost_usd", limit_value=99.5),
                     QueueSettings(id=1, max_concurrent=4)])
    session.commit()
    same_answer(org_answers.Org, orgs.org_dict(session, org))
    same_answer(org_answers.Team, orgs.team_dict(session, team))
    member = session.get(TeamMember, ("t_1", "u_1"))
    same_answer(org_answers.Member, org_members.member_dict(member, session.get(User, "u_1")))
    for quota_id in ("q_1", "q_2"):
        same_answer(quota_answers.Quota, quotas.quota_dict(session, quotas.get(session, quota_id)))
    same_answer(quota_answers.QuotaTypes, quotas.quota_types())
    same_answer(quota_answers.UserQuotas, quotas.user_quotas(session, "u_1", "ann", ["researcher"]))


def test_queue(session):
    session.add_all([_job(id="j_1", status="queued"), _job(id="j_2", status="running"), _job(id="j_3", status="queued"),
                     Admission(job_id="j_1", user_id="u_1", username="ann", priority=20, enqueued_seq=1),
                     Admission(job_id="j_2", user_id="u_1", username="ann", priority=20, state="admitted",
                               enqueued_seq=2, admit_seq=3, admitted_at=T0, team_slug="ml", org_slug="acme"),
                     QueueSettings(id=1, max_concurrent=1)])
    session.commit()
    same_answer(queue.QueuePage, queue_view.snapshot(session, None, PageRequest()))
    same_answer(queue.QueueStats, queue_view.stats(session))
    for job_id in ("j_1", "j_2", "j_3"):
        same_answer(queue.Position | queue.NotQueued, queue_view.position(session, jobs.get(session, job_id)))


def test_costs(session):
    row = ProviderConfig(provider="worker", cost_limit_enabled=True, cost_limit_amount=100.0, updated_at=T0,
                         updated_by="admin")
    session.add(row)
    session.add(_job(cost_estimate_usd=12.5))
    session.commit()
    same_answer(costs.ProviderConfig, cost_limits.to_dict(cost_limits.get(session, "local")))
    same_answer(costs.CostLimitStatus, {"providers": cost_limits.all_status(session)})


def test_credentials_channels_and_sso(session):
    session.add(User(id="u_1", username="ann", created_at=T0))
    session.flush()
    cred = ProviderCredential(id="cred_1", user_id="u_1", provider="replicate", credential_name="api_token",
                              ciphertext="x", fingerprint="abcd", created_at=T0 - timedelta(days=200), last_used_at=T0)
    session.add(cred)
    session.commit()
    answer = credentials.to_dict(cred)
    same_answer(credential_answers.CredentialSet, {**answer, "created": True})
    same_answer(credential_answers.StaleCheck, {"stale_after_days": 90, "count": 1,
                                                "credentials": credentials.check_stale(session)})
    validate = credential_answers.Resolved | credential_answers.Unresolved
    cipher = SimpleNamespace(decrypt=lambda token: "the value")
    own = CredentialRef(provider="replicate", credential_name="api_token")
    same_answer(validate, credentials.validate(session, "u_1", own, cipher=cipher))
    same_answer(validate, credentials.validate(session, "u_1", CredentialRef(provider="replicate",
                                                                            credential_name="other"), env={}))
    same_answer(validate, credentials.validate(session, "u_1", CredentialRef(provider="hf", credential_name="token"),
                                               env={"SIMPLETUNER_HF_TOKEN": "v"}))
    channel = NotificationChannel(id="ch_1", name="mail", channel_type="email", smtp_host="smtp", smtp_port=587,
                                  smtp_use_tls=True, smtp_password_encrypted="x", imap_host="imap", imap_port=993,
                                  imap_username="bot", created_at=T0, updated_at=T0)
    same_answer(channel_answers.Channel, channels.to_dict(channel))
    provider = ExternalAuthProvider(name="corp", provider_type="oidc",
                                    config={"issuer": "https://id", "client_id": "st", "scopes": ["openid"]},
                                    level_mapping={"admins": ["admin"]}, encrypted_secrets={"client_secret": "tok"},
                                    created_at=T0, updated_at=T0)
    same_answer(sso.Provider, providers.to_dict(provider))


def test_metrics(session):
    from activities.observability import metrics_catalog, metrics_config, metrics_export
    from activities.observability.metrics_config import MetricsConfigBody
    from api.schemas import metrics as metric_answers

    same_answer(metric_answers.MetricsConfig, metrics_config.to_dict(metrics_config.get(session)))
    saved = metrics_config.put(session, MetricsConfigBody.model_validate({"enabled": True, "categories": ["jobs"]}),
                               "admin", None)
    session.commit()
    same_answer(metric_answers.MetricsConfig, metrics_config.to_dict(saved))
    same_answer(metric_answers.MetricsConfig, metrics_config.to_dict(metrics_config.get(session)))
    same_answer(metric_answers.CategoryList, {"categories": metrics_catalog.describe_categories()})
    same_answer(metric_answers.TemplateList, {"templates": metrics_catalog.describe_templates()})
    config = metrics_config.get(session)
    same_answer(metric_answers.MetricsPreview,
                metrics_export.preview(config, metrics_export.export(session, config, 1.5)))
