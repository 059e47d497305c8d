"""The Replicate stand-in (tests/servers/replicate_server.py) against the official client, ``replicate``:
the training calls a Replicate backend makes, answered in Replicate's shapes and errors, and webhooks that
the Standard Webhooks reference library (``standardwebhooks``) and the client's own validator accept.
Also its control API: stepping a training, outages, forged and replayed webhooks, and the CLI entry point."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import replicate
from replicate.exceptions import ReplicateError
from replicate.pagination import paginate
from replicate.webhook import WebhookSigningSecret, Webhooks
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.ports import free_port
from tests.servers.replicate_server import ReplicateServer

VERSION = "39ed52f2a78e934b3ba6e2a89f5b1c712de7dfea535525255b1aa35c5565e08b"
BASE = "stability-ai/sdxl"
DEST = "acme/sdxl-lora"
ROOT = Path(__file__).resolve().parents[2]


class Receiver:
    """A webhook receiver on 127.0.0.1 that records each request and answers from a script of statuses
    (then 200)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks/replicate"
        self.received: list[dict[str, Any]] = []
        self.script: list[int] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                return None

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    status = receiver.script.pop(0) if receiver.script else 200
                    receiver.received.append({"path": self.path, "headers": dict(self.headers.items()),
                                              "body": body, "answered": status})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> "Receiver":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.received)


@pytest.fixture(scope="module")
def server() -> Iterator[ReplicateServer]:
    with ReplicateServer() as stand_in:
        yield stand_in


@pytest.fixture
def replicate_api(server: ReplicateServer) -> ReplicateServer:
    server.reset()
    server.set_tokens([server.token])
    return server


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as hooks:
        yield hooks


def client(server: ReplicateServer, token: str | None = None) -> replicate.Client:
    return replicate.Client(api_token=token or server.token, base_url=server.url)


def raw(server: ReplicateServer, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token or server.token}", **kwargs.pop("headers", {})}
    return httpx.request(method, server.url + path, headers=headers, timeout=10, trust_env=False, **kwargs)


def control(server: ReplicateServer, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.request(method, f"{server.url}/_control/{path}", json=body, timeout=10, trust_env=False)


def create(server: ReplicateServer, **params: Any) -> replicate.training.Training:
    return client(server).trainings.create(model=BASE, version=VERSION, input={"steps": 100, "lr": 1e-4},
                                           destination=DEST, **params)


def verify(secret: str, delivery: dict[str, Any]) -> Any:
    return Webhook(secret).verify(delivery["body"], delivery["headers"])


# ---- the API through the official client


def test_create_get_list_cancel(replicate_api):
    training = create(replicate_api)
    assert training.status == "starting" and training.model == BASE and training.version == VERSION
    assert training.input == {"steps": 100, "lr": 1e-4} and training.logs == "" and training.output is None
    assert training.urls == {"get": f"{replicate_api.url}/v1/trainings/{training.id}",
                             "cancel": f"{replicate_api.url}/v1/trainings/{training.id}/cancel"}
    assert training.created_at.endswith("Z") and training.started_at is None

    fetched = client(replicate_api).trainings.get(training.id)
    assert fetched.id == training.id and fetched.status == "starting"
    page = client(replicate_api).trainings.list()
    assert [t.id for t in page] == [training.id] and page.next is None and page.previous is None

    canceled = client(replicate_api).trainings.cancel(training.id)
    assert canceled.status == "canceled" and canceled.completed_at is not None
    fetched.reload()
    assert fetched.status == "canceled"
    # the wire: what the client sent, and fields the client's model does not keep
    body = raw(replicate_api, "GET", f"/v1/trainings/{training.id}").json()
    assert body["source"] == "api" and body["metrics"] == {"predict_time": 0.0} and body["destination"] == DEST
    create_call, cancel_call = (r for r in replicate_api.requests if r["method"] == "POST")
    assert create_call["path"] == f"/v1/models/{BASE}/versions/{VERSION}/trainings"
    assert create_call["body"] == {"input": {"steps": 100, "lr": 1e-4}, "destination": DEST}
    assert create_call["status"] == 201 and create_call["authorization"] == f"Bearer {replicate_api.token}"
    assert cancel_call["path"] == f"/v1/trainings/{training.id}/cancel" and cancel_call["status"] == 200
    # canceling a finished training answers it unchanged
    assert client(replicate_api).trainings.cancel(training.id).completed_at == canceled.completed_at


def test_a_training_steps_through_processing_to_success(replicate_api):
    training = create(replicate_api)
    replicate_api.advance(training.id, "processing", logs="step 1/100 loss=0.9\n")
    replicate_api.advance(training.id, "processing", logs="step 50/100 loss=0.4\n")
    running = client(replicate_api).trainings.get(training.id)
    assert running.status == "processing" and running.started_at is not None
    assert running.logs == "step 1/100 loss=0.9\nstep 50/100 loss=0.4\n"

    replicate_api.advance(training.id, "succeeded", logs="done\n", predict_time=42.5)
    done = client(replicate_api).trainings.get(training.id)
    assert done.status == "succeeded" and done.completed_at is not None and done.error is None
    assert done.output["version"].startswith(f"{DEST}:") and len(done.output["version"].split(":")[1]) == 64
    assert done.destination == DEST  # the client derives it from output.version
    assert raw(replicate_api, "GET", f"/v1/trainings/{training.id}").json()["metrics"] == {"predict_time": 42.5}
    weights = httpx.get(done.output["weights"], timeout=10, trust_env=False)
    assert weights.status_code == 200 and weights.headers["content-type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(weights.content)) as archive:
        manifest = json.load(archive.extractfile("training.json"))
    assert manifest["training"] == training.id and manifest["input"] == {"steps": 100, "lr": 1e-4}
    with pytest.raises(Exception, match="already succeeded"):
        replicate_api.advance(training.id, "failed")


def test_a_failed_training_carries_its_error(replicate_api):
    training = create(replicate_api)
    replicate_api.advance(training.id, "processing")
    replicate_api.advance(training.id, "failed", error="CUDA out of memory", predict_time=3.0)
    failed = client(replicate_api).trainings.get(training.id)
    assert failed.status == "failed" and failed.error == "CUDA out of memory" and failed.output is None


def test_list_is_paginated_newest_first(server):
    with ReplicateServer(page_size=2) as paged:
        ids = [create(paged).id for _ in range(5)]
        first = client(paged).trainings.list()
        assert [t.id for t in first] == ids[::-1][:2] and first.previous is None
        assert first.next.startswith(f"{paged.url}/v1/trainings?cursor=")
        second = client(paged).trainings.list(first.next)
        assert [t.id for t in second] == ids[::-1][2:4] and second.previous is not None
        every = [t.id for page in paginate(client(paged).trainings.list) for t in page]
        assert every == ids[::-1]
        assert raw(paged, "GET", "/v1/trainings?cursor=%%%").status_code == 400


def test_wrong_or_missing_token_is_401(replicate_api):
    with pytest.raises(ReplicateError) as caught:
        client(replicate_api, "r8_wrong").trainings.list()
    assert caught.value.status == 401 and caught.value.detail == "Invalid token."
    with pytest.raises(ReplicateError) as caught:
        client(replicate_api, "r8_wrong").trainings.create(model=BASE, version=VERSION, input={}, destination=DEST)
    assert caught.value.status == 401
    missing = httpx.get(f"{replicate_api.url}/v1/trainings", timeout=10, trust_env=False)
    assert missing.status_code == 401 and missing.json()["detail"] == "Invalid token."
    # the older "Token" scheme is accepted too, and the accepted set is configurable
    legacy = httpx.get(f"{replicate_api.url}/v1/trainings", headers={"Authorization": f"Token {replicate_api.token}"},
                       timeout=10, trust_env=False)
    assert legacy.status_code == 200
    assert control(replicate_api, "POST", "tokens", {"tokens": ["r8_second"]}).status_code == 200
    assert client(replicate_api, "r8_second").trainings.list().results == []
    with pytest.raises(ReplicateError):
        client(replicate_api).trainings.list()


def test_unknown_id_is_404_and_bad_bodies_are_refused(replicate_api):
    with pytest.raises(ReplicateError) as caught:
        client(replicate_api).trainings.get("nosuchtraining")
    assert caught.value.status == 404 and caught.value.detail == "Not found."
    with pytest.raises(ReplicateError) as caught:
        client(replicate_api).trainings.cancel("nosuchtraining")
    assert caught.value.status == 404
    with pytest.raises(ReplicateError) as caught:
        client(replicate_api).trainings.create(model=BASE, version=VERSION, input={}, destination="no-slash")
    assert caught.value.status == 422 and "destination" in caught.value.detail
    with pytest.raises(ReplicateError) as caught:
        create(replicate_api, webhook="https://hooks.test/x", webhook_events_filter=["everything"])
    assert caught.value.status == 422 and "webhook_events_filter" in caught.value.detail
    path = f"/v1/models/{BASE}/versions/{VERSION}/trainings"
    broken = raw(replicate_api, "POST", path, content=b"{not json", headers={"Content-Type": "application/json"})
    assert broken.status_code == 400 and broken.json()["detail"]
    assert raw(replicate_api, "POST", path, json={"destination": DEST}).status_code == 422  # no input
    assert replicate_api.trainings() == []


# ---- webhooks


def test_webhooks_verify_with_standard_webhooks_and_honour_the_filter(replicate_api, receiver):
    secret = client(replicate_api).webhooks.default.secret().key
    assert secret == replicate_api.secret and secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32

    filtered = create(replicate_api, webhook=receiver.url, webhook_events_filter=["logs"])
    everything = create(replicate_api, webhook=receiver.url)
    for training in (filtered, everything):
        replicate_api.advance(training.id, "processing", logs="step 1\n")
        replicate_api.advance(training.id, "processing", output={"sample": "https://example.test/1.png"})
        replicate_api.advance(training.id, "succeeded", predict_time=7.0)
    replicate_api.wait_deliveries_settled(timeout=10)
    got = receiver.events()
    assert len(got) == 3 + 4

    seen: dict[str, list[str]] = {filtered.id: [], everything.id: []}
    for delivery in got:
        payload = verify(secret, delivery)  # raises unless signature and timestamp are right
        Webhooks.validate(headers=delivery["headers"], body=delivery["body"].decode(),  # the client's validator
                          secret=WebhookSigningSecret(key=secret), tolerance=300)
        headers = {k.lower(): v for k, v in delivery["headers"].items()}
        assert headers["webhook-id"].startswith("msg_") and headers["content-type"] == "application/json"
        assert headers["webhook-signature"].startswith("v1,")
        assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
        seen[payload["id"]].append(payload["status"])
    assert seen[filtered.id] == ["starting", "processing", "succeeded"]  # start, logs, completed (no output)
    assert seen[everything.id] == ["starting", "processing", "processing", "succeeded"]
    last = json.loads(got[-1]["body"])
    assert last == raw(replicate_api, "GET", f"/v1/trainings/{everything.id}").json()  # the same object as GET
    assert last["metrics"] == {"predict_time": 7.0} and last["output"]["weights"].endswith("/trained_model.tar")
    events = [d["event"] for d in replicate_api.deliveries(everything.id)]
    assert events == ["start", "logs", "output", "completed"]
    assert all(d["state"] == "delivered" and len(d["attempts"]) == 1 for d in replicate_api.deliveries())


def test_a_delivery_is_retried_with_the_same_webhook_id(replicate_api, receiver):
    receiver.script = [500, 503]
    training = create(replicate_api, webhook=receiver.url)
    replicate_api.wait_deliveries_settled(timeout=10)
    got = receiver.events()
    assert [d["answered"] for d in got] == [500, 503, 200]
    assert len({d["headers"]["webhook-id"] for d in got}) == 1
    assert all(verify(replicate_api.secret, d)["id"] == training.id for d in got)
    (delivery,) = replicate_api.deliveries(training.id)
    assert delivery["state"] == "delivered" and [a["status"] for a in delivery["attempts"]] == [500, 503, 200]


def test_an_unreachable_receiver_is_given_up_after_a_few_attempts(replicate_api):
    nowhere = f"http://127.0.0.1:{free_port()}/hook"
    training = create(replicate_api, webhook=nowhere)
    (delivery,) = replicate_api.wait_deliveries_settled(timeout=20)
    assert delivery["training_id"] == training.id and delivery["state"] == "failed"
    assert len(delivery["attempts"]) == replicate_api.webhook_attempts
    assert all(a["status"] is None and "Connect" in a["error"] for a in delivery["attempts"])


def test_webhooks_can_be_switched_off_for_polling_only_runs(replicate_api, receiver):
    assert control(replicate_api, "POST", "webhooks", {"enabled": False}).json() == {"enabled": False}
    training = create(replicate_api, webhook=receiver.url)
    replicate_api.advance(training.id, "succeeded")
    assert client(replicate_api).trainings.get(training.id).status == "succeeded"
    assert replicate_api.deliveries() == [] and receiver.events() == []


def test_forged_signature_and_stale_timestamps_fail_verification(replicate_api, receiver):
    training = create(replicate_api, webhook=receiver.url)
    replicate_api.wait_deliveries_settled(timeout=10)
    for kind, message in (("bad_signature", "No matching signature"), ("old_timestamp", "too old"),
                          ("future_timestamp", "too new")):
        answer = control(replicate_api, "POST", f"trainings/{training.id}/forge", {"kind": kind, "seconds": 600})
        assert answer.status_code == 202 and answer.json()["kind"] == kind
    replicate_api.wait_deliveries_settled(timeout=10)
    genuine, *forged = receiver.events()
    assert verify(replicate_api.secret, genuine)["id"] == training.id
    for delivery, message in zip(forged, ("No matching signature", "too old", "too new"), strict=True):
        with pytest.raises(WebhookVerificationError, match=message):
            verify(replicate_api.secret, delivery)
    old = int(forged[1]["headers"]["webhook-timestamp"])
    assert 590 <= time.time() - old <= 660
    # signed correctly all the same: the exposed signing function reproduces it
    headers = forged[1]["headers"]
    assert replicate_api.sign(headers["webhook-id"], old, forged[1]["body"]) == headers["webhook-signature"]


def test_redelivery_keeps_the_webhook_id(replicate_api, receiver):
    training = create(replicate_api, webhook=receiver.url)
    replicate_api.advance(training.id, "processing", logs="hello\n")
    replicate_api.wait_deliveries_settled(timeout=10)
    assert control(replicate_api, "POST", f"trainings/{training.id}/redeliver").status_code == 202
    replicate_api.redeliver(training.id, timestamp="original")
    replicate_api.wait_deliveries_settled(timeout=10)
    start, logs, again, replay = receiver.events()
    assert again["headers"]["webhook-id"] == logs["headers"]["webhook-id"] != start["headers"]["webhook-id"]
    assert again["body"] == logs["body"] and verify(replicate_api.secret, again)["logs"] == "hello\n"
    assert replay["headers"]["webhook-id"] == logs["headers"]["webhook-id"]
    for header in ("webhook-timestamp", "webhook-signature"):
        assert replay["headers"][header] == logs["headers"][header]  # byte for byte the captured one
    kinds = [d["kind"] for d in control(replicate_api, "GET", f"deliveries?training_id={training.id}").json()]
    assert kinds == ["event", "event", "redelivery", "redelivery"]


def test_a_rotated_secret_signs_later_webhooks(replicate_api, receiver):
    old = replicate_api.secret
    new = control(replicate_api, "POST", "secret/rotate").json()["key"]
    assert new != old and client(replicate_api).webhooks.default.secret().key == new
    create(replicate_api, webhook=receiver.url)
    replicate_api.wait_deliveries_settled(timeout=10)
    (delivery,) = receiver.events()
    verify(new, delivery)
    with pytest.raises(WebhookVerificationError):
        verify(old, delivery)


# ---- outages and automatic runs


def test_outage_answers_errors_or_drops_connections(replicate_api):
    training = create(replicate_api)
    assert control(replicate_api, "POST", "outage", {"enabled": True, "status": 503}).status_code == 200
    with pytest.raises(ReplicateError) as caught:  # a POST is not retried by the client
        create(replicate_api)
    assert caught.value.status == 503
    assert raw(replicate_api, "GET", f"/v1/trainings/{training.id}").status_code == 503
    assert raw(replicate_api, "GET", "/v1/trainings", token="r8_wrong").status_code == 503  # before auth

    replicate_api.set_outage(True, status=500)
    with pytest.raises(ReplicateError) as caught:
        client(replicate_api).trainings.get(training.id)
    assert caught.value.status == 500

    control(replicate_api, "POST", "outage", {"enabled": True, "mode": "drop"})
    with pytest.raises(httpx.RemoteProtocolError):
        raw(replicate_api, "GET", f"/v1/trainings/{training.id}")
    with pytest.raises(httpx.TransportError):
        client(replicate_api).trainings.cancel(training.id)
    # the control API still answers, and the training was left alone
    assert control(replicate_api, "GET", f"trainings/{training.id}").json()["status"] == "starting"
    dropped = [r for r in replicate_api.requests if r["status"] is None]
    assert {r["path"] for r in dropped} == {f"/v1/trainings/{training.id}", f"/v1/trainings/{training.id}/cancel"}

    control(replicate_api, "POST", "outage", {"enabled": False})
    assert client(replicate_api).trainings.cancel(training.id).status == "canceled"


def test_control_api_over_http(replicate_api, receiver):
    training = create(replicate_api, webhook=receiver.url)
    stepped = control(replicate_api, "POST", f"trainings/{training.id}/advance",
                      {"status": "processing", "logs": "epoch 1\n"})
    assert stepped.status_code == 200 and stepped.json()["logs"] == "epoch 1\n"
    done = control(replicate_api, "POST", f"trainings/{training.id}/advance",
                   {"status": "succeeded", "predict_time": 12.0}).json()
    assert done["status"] == "succeeded" and done["metrics"] == {"predict_time": 12.0}
    assert control(replicate_api, "POST", f"trainings/{training.id}/advance", {"status": "failed"}).status_code == 409
    assert control(replicate_api, "POST", f"trainings/{training.id}/advance", {"status": "bogus"}).status_code == 422
    assert control(replicate_api, "POST", "trainings/nope/advance", {"status": "failed"}).status_code == 404
    replicate_api.wait_deliveries_settled(timeout=10)
    deliveries = control(replicate_api, "GET", "deliveries").json()
    assert [d["event"] for d in deliveries] == ["start", "logs", "completed"]
    assert all(d["attempts"][0]["status"] == 200 for d in deliveries)
    logged = control(replicate_api, "GET", "requests").json()
    assert [(r["method"], r["status"]) for r in logged] == [("POST", 201)]
    assert control(replicate_api, "DELETE", "requests").status_code == 204 and replicate_api.requests == []
    assert control(replicate_api, "POST", "reset").status_code == 204 and replicate_api.trainings() == []


def test_automatic_mode_runs_a_training_to_success(replicate_api, receiver):
    control(replicate_api, "POST", "auto", {"enabled": True, "starting_seconds": 0.05, "processing_seconds": 0.1})
    training = create(replicate_api, webhook=receiver.url, webhook_events_filter=["completed"])
    api = client(replicate_api)
    done = replicate_api.wait_for(lambda: (t := api.trainings.get(training.id)).status == "succeeded" and t,
                                  timeout=10)
    assert done.logs == "Training started.\nTraining finished.\n" and done.output["version"].startswith(DEST)
    replicate_api.wait_deliveries_settled(timeout=10)
    assert [verify(replicate_api.secret, d)["status"] for d in receiver.events()] == ["starting", "succeeded"]
    # a canceled training is not taken further
    other = create(replicate_api)
    api.trainings.cancel(other.id)
    replicate_api.wait_for(lambda: all(t["status"] in ("succeeded", "canceled") for t in replicate_api.trainings()))
    assert api.trainings.get(other.id).status == "canceled"


def test_runs_as_a_module_and_prints_its_url():
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "tests.servers.replicate_server", "--port", str(port),
                                "--token", "r8_cli"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().strip()
        assert url == f"http://127.0.0.1:{port}"
        api = replicate.Client(api_token="r8_cli", base_url=url)
        training = api.trainings.create(model=BASE, version=VERSION, input={"steps": 1}, destination=DEST)
        answer = httpx.post(f"{url}/_control/trainings/{training.id}/advance", json={"status": "succeeded"},
                            timeout=10, trust_env=False)
        assert answer.status_code == 200
        assert api.trainings.get(training.id).status == "succeeded"
    finally:
        process.terminate()
        process.wait(timeout=10)
