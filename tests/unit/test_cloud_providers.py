"""The Replicate provider's parsing, status map and webhook signatures, the circuit breaker, training
updates that never go backwards, and which token a job uses."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlmodel import Session, select
from standardwebhooks.webhooks import Webhook

from activities.db.models import JobEvent, JobLogLine
from activities.db.models_providers import ProviderConfig
from activities.providers import circuit, trainings
from activities.providers import settings as provider_settings
from activities.providers.base import ProviderCallError, ProviderRefused, WebhookRejected
from activities.providers.replicate import ReplicateProvider, split_version
from activities.settings import load_settings

REPLICATE = ReplicateProvider()
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def session(db: Session) -> Session:
    """The shared ``db`` fixture: each test runs on SQLite and on PostgreSQL."""
    return db


def training(status: str = "starting", **extra) -> dict:
    return {"id": "tr1", "status": status, "logs": "", "output": None, "error": None, **extra}


def test_statuses_map_to_job_statuses_and_rank_forward():
    assert [REPLICATE.job_status(s) for s in ("starting", "processing", "succeeded", "failed", "canceled")] == [
        "queued", "running", "completed", "failed", "cancelled"]
    assert REPLICATE.rank("starting") < REPLICATE.rank("processing") < REPLICATE.rank("succeeded")


def test_a_training_answer_is_parsed_and_a_non_training_refused():
    state = REPLICATE.parse_training(training("succeeded", logs="a\nb\n", metrics={"predict_time": 12.5},
                                              output={"weights": "https://x/w.tar"}))
    assert (state.training_id, state.status, state.predict_time, state.output) == (
        "tr1", "succeeded", 12.5, {"weights": "https://x/w.tar"})
    for bad in ({"id": "tr1", "status": "exploded"}, {"status": "starting"}, {"id": 5, "status": "starting"}):
        with pytest.raises(ProviderCallError):
            REPLICATE.parse_training(bad)
    negative = REPLICATE.parse_training(training("succeeded", metrics={"predict_time": -1}))
    assert negative.predict_time is None


def test_versions_must_name_the_model():
    assert split_version("acme/trainer:abc123") == ("acme", "trainer", "abc123")
    for bad in ("abc123", "acme/trainer", "acme/trainer:../x", "", "a/b:c/d"):
        with pytest.raises(ProviderRefused):
            split_version(bad)


def test_actual_cost_is_billed_seconds_at_the_hourly_rate():
    state = REPLICATE.parse_training(training("succeeded", metrics={"predict_time": 1800}))
    assert REPLICATE.actual_cost_usd(state, 7.2, 1) == 3.6
    assert REPLICATE.actual_cost_usd(state, 7.2, 2) == 7.2
    assert REPLICATE.actual_cost_usd(state, None, 1) is None  # unknown rate: no made-up cost


def _signed(body: bytes, msg_id: str = "msg_1", at: float | None = None, secret: str = SECRET) -> dict[str, str]:
    stamp = datetime.fromtimestamp(at if at is not None else time.time(), tz=timezone.utc)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(stamp.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, stamp, body)}


def test_webhook_signatures_timestamps_and_tampering():
    body = b'{"id": "tr1", "status": "processing"}'
    assert REPLICATE.verify_webhook(SECRET, _signed(body), body) == "msg_1"
    refusals = {
        "tampered body": (_signed(body), body.replace(b"processing", b"succeeded")),
        "other secret": (_signed(body, secret="whsec_" + "A" * 32), body),
        "six minutes old": (_signed(body, at=time.time() - 360), body),
        "six minutes ahead": (_signed(body, at=time.time() + 360), body),
        "no signature": ({"webhook-id": "msg_1", "webhook-timestamp": str(int(time.time()))}, body),
    }
    for why, (headers, sent) in refusals.items():
        with pytest.raises(WebhookRejected):
            REPLICATE.verify_webhook(SECRET, headers, sent)
            pytest.fail(why)


def test_training_updates_never_move_backwards_and_copy_logs_once(session):
    row = trainings.start(session, "job-1", "replicate")
    trainings.created(session, row, REPLICATE, REPLICATE.parse_training(training()), "global")
    assert trainings.apply(session, row, REPLICATE, REPLICATE.parse_training(training("processing", logs="a\nb")))
    assert trainings.apply(session, row, REPLICATE, REPLICATE.parse_training(training("processing", logs="a\nb\nc")))
    assert not trainings.apply(session, row, REPLICATE, REPLICATE.parse_training(training("starting")))
    assert row.status == "processing"
    trainings.apply(session, row, REPLICATE, REPLICATE.parse_training(training("succeeded", logs="a\nb\nc\nd",
                                                                               metrics={"predict_time": 3.0})))
    assert not trainings.apply(session, row, REPLICATE, REPLICATE.parse_training(training("failed")))
    assert not trainings.apply(session, row, REPLICATE, REPLICATE.parse_training(training("processing")))
    session.commit()
    assert (row.status, row.predict_time) == ("succeeded", 3.0)
    lines = session.exec(select(JobLogLine.line).where(JobLogLine.job_id == "job-1").order_by(JobLogLine.seq)).all()
    assert lines == ["a", "b", "c", "d"]


def test_the_circuit_opens_after_consecutive_failures_and_half_opens_after_the_cool_down(session):
    now = datetime.now(timezone.utc)
    circuit.before_call(session, "replicate", now)
    assert not circuit.record_failure(session, "replicate", "503", threshold=2, cooldown_seconds=60, now=now)
    circuit.record_success(session, "replicate")  # a success in between resets the count
    assert not circuit.record_failure(session, "replicate", "503", threshold=2, cooldown_seconds=60, now=now)
    assert circuit.record_failure(session, "replicate", "503", threshold=2, cooldown_seconds=60, now=now)
    session.commit()
    with pytest.raises(circuit.CircuitOpen):
        circuit.before_call(session, "replicate", now + timedelta(seconds=59))
    later = now + timedelta(seconds=61)
    assert circuit.state(session, "replicate", later)["state"] == "half_open"
    circuit.before_call(session, "replicate", later)  # the trial call may go
    assert circuit.record_failure(session, "replicate", "503", threshold=2, cooldown_seconds=60, now=later)
    with pytest.raises(circuit.CircuitOpen):  # the failed trial opened it for another cool-down
        circuit.before_call(session, "replicate", later + timedelta(seconds=30))
    circuit.record_success(session, "replicate")
    session.commit()
    assert circuit.state(session, "replicate")["state"] == "closed"
    kinds = [e.event_type for e in session.exec(select(JobEvent).order_by(JobEvent.id))]
    assert kinds.count("system.provider_degraded") == 2 and kinds[-1] == "system.provider_recovered"
    assert kinds.count("system.provider_error") == 4


def test_the_token_is_the_users_own_else_the_global_one(session, monkeypatch):
    settings = load_settings()
    env = {"REPLICATE_API_TOKEN": "r8_conventional"}
    assert provider_settings.token(session, "replicate", "u_1", None, env=env) == ("r8_conventional", "global")
    env["SIMPLETUNER_REPLICATE_API_TOKEN"] = "r8_global"
    assert provider_settings.token(session, "replicate", "u_1", None, env=env) == ("r8_global", "global")
    with pytest.raises(ProviderRefused, match="no replicate API token"):
        provider_settings.token(session, "replicate", "u_1", None, env={})
    row = ProviderConfig(provider="replicate")
    assert provider_settings.configured(row) == ["version", "destination"]
    assert provider_settings.polling(row, settings).interval_seconds == 30.0  # no webhook: polled every interval
    row.webhook_url, row.polling_interval_seconds = "https://cp.example/api/webhooks/replicate", 5.0
    polled = provider_settings.polling(row, settings)
    assert polled.webhooks and polled.interval_seconds == 50.0  # webhooks expected: a poll as a safety net


def test_settings_change_only_what_is_sent_and_never_log_a_proxy_password(session):
    from activities.db.models import AuditEntry
    from activities.errors import InvalidInput
    from activities.governance import cost_limits
    from activities.governance.cost_limits import ProviderConfigBody

    cost_limits.put(session, "replicate", ProviderConfigBody(version="acme/t:abc", destination="acme/out"), "admin", None)
    cost_limits.put(session, "replicate", ProviderConfigBody(proxy_url="http://ops:s3cret@proxy.corp:3128"), "admin",
                    None)
    session.commit()
    shown = cost_limits.to_dict(cost_limits.get(session, "replicate"))
    assert (shown["version"], shown["destination"]) == ("acme/t:abc", "acme/out")  # kept: not sent the 2nd time
    assert shown["proxy_url"] == "http://ops:***@proxy.corp:3128"
    details = [e.details for e in session.exec(select(AuditEntry).where(AuditEntry.action == "provider.config_changed"))]
    assert details and "s3cret" not in str(details), details
    with pytest.raises(InvalidInput, match="ssl_verify_acknowledged"):
        cost_limits.put(session, "replicate", ProviderConfigBody(ssl_verify=False), "admin", None)
    with pytest.raises(ValueError):
        ProviderConfigBody(webhook_allowed_ips=["10.0.0.0/33"])
