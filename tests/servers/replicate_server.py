"""A stand-in for Replicate's trainings API on 127.0.0.1: a real HTTP server speaking the documented wire
format that the official ``replicate`` client and the project's Replicate backend use, plus a control API
that lets tests drive each training deterministically instead of waiting on timers.

Run it alone with ``python -m tests.servers.replicate_server --port N [--token T]... [--auto]``: it prints
its URL on the first line of stdout (the accepted token goes to stderr). In tests, use the class:
``with ReplicateServer() as server: ...`` (``server.url``, ``server.token``).

Replicate API (``Authorization: Bearer <token>`` or ``Token <token>``; a token not in ``tokens`` gets 401
``{"detail": "Invalid token."}``):

- ``POST /v1/models/{owner}/{name}/versions/{version_id}/trainings`` with ``{"destination": "owner/model",
  "input": {...}, "webhook": URL?, "webhook_events_filter": [...]?}`` -> 201 and the training (status
  ``starting``). Unparseable JSON -> 400, a missing/invalid field -> 422, each with a ``detail``.
- ``GET /v1/trainings/{id}``; ``POST /v1/trainings/{id}/cancel`` (a terminal training is answered as is).
  An unknown id -> 404 ``{"detail": "Not found."}``.
- ``GET /v1/trainings[?cursor=...]`` -> ``{"next", "previous", "results"}``, newest first, ``page_size``
  per page; ``next``/``previous`` are absolute URLs on this server (or null).
- ``GET /v1/account`` -> the account the token belongs to (``username`` "standin").
- ``GET /v1/webhooks/default/secret`` -> ``{"key": "whsec_<base64 of 32 random bytes>"}``.
- Training: ``id, model, version, destination, input, logs, error, status, created_at, started_at,
  completed_at, output, metrics, urls {get, cancel}, source: "api", webhook, webhook_events_filter``.
  ``output`` of a succeeded training is ``{"version": "<destination>:<64 hex>", "weights": URL}``; the
  weights URL (``GET /delivery/{id}/trained_model.tar``, no token, like a CDN) serves a real tar archive.
  Terminal trainings carry ``metrics: {"predict_time": seconds}``.

Webhooks, as Replicate sends them (Standard Webhooks): the training object as JSON, headers ``webhook-id``
(``msg_...``; the same on every retry of one delivery), ``webhook-timestamp`` (Unix seconds of the attempt)
and ``webhook-signature`` (``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` keyed with the base64-
decoded secret after ``whsec_``). Events: ``start`` (on create), ``logs`` (a change while processing, e.g.
new log lines), ``output`` (new output while processing), ``completed`` (succeeded, failed, canceled);
``webhook_events_filter`` picks among them, ``start`` and ``completed`` are always sent. Unlike Replicate,
``logs``/``output`` are not throttled to one per 500 ms: each control step sends at most one webhook, so
tests see every step. Deliveries go out in order from one sender thread; a non-2xx answer or an unreachable
receiver is retried (``webhook_attempts`` attempts in all, ``webhook_backoff`` seconds doubling between).

Control API (no token; never affected by an outage; bodies and answers are JSON):

- ``POST /_control/trainings/{id}/advance`` ``{"status": "processing"|"succeeded"|"failed"|"canceled",
  "logs": "text appended", "output": any, "predict_time": float, "error": str}`` -> the training.
  ``processing`` sets ``started_at``; ``succeeded`` fills ``output`` (default as above) and ``metrics``;
  ``failed`` sets ``error`` (default "Training failed."). A terminal training -> 409.
- ``GET /_control/trainings/{id}`` -> the training as the API shows it (also when the API is in outage).
- ``POST /_control/webhooks`` ``{"enabled": bool}``: whether webhooks are sent at all (polling-only runs).
- ``POST /_control/outage`` ``{"enabled": bool, "mode": "status"|"drop", "status": 503}``: every ``/v1/...``
  call answers ``status`` (``{"detail": "Service unavailable."}``) or has its connection dropped unanswered.
- ``POST /_control/trainings/{id}/redeliver`` ``{"timestamp": "now"|"original"}``: sends the training's last
  webhook again with the same ``webhook-id`` and body; ``now`` signs it afresh (as a retry is),
  ``original`` resends the first attempt's timestamp and signature byte for byte (a captured replay).
- ``POST /_control/trainings/{id}/forge`` ``{"kind": "bad_signature"|"old_timestamp"|"future_timestamp",
  "seconds": 600}``: sends the current training once with a signature made with another key, or correctly
  signed but ``seconds`` in the past/future.
- ``GET /_control/deliveries[?training_id=...]`` -> ``[{"seq", "webhook_id", "training_id", "event",
  "kind", "url", "body", "state": "pending"|"delivered"|"failed", "attempts": [{"timestamp", "signature",
  "status", "error"}]}]``.
- ``GET /_control/requests`` -> ``[{"method", "path", "query", "authorization", "body", "status"}]`` of every
  ``/v1/...`` call received; ``DELETE /_control/requests`` empties it.
- ``POST /_control/secret/rotate`` -> ``{"key": new secret}``.
- ``POST /_control/tokens`` ``{"tokens": [...]}`` replaces the accepted tokens.
- ``POST /_control/auto`` ``{"enabled": bool, "starting_seconds": 0.5, "processing_seconds": 2.0}``: new
  trainings then go starting -> processing -> succeeded by themselves (off by default).
- ``POST /_control/reset``: forgets trainings, deliveries and requests; webhooks on, outage and auto off.

In-process, the same through methods: ``advance``, ``set_webhooks``, ``set_outage``, ``redeliver``,
``forge``, ``deliveries``, ``requests``, ``rotate_secret``, ``set_auto``, ``reset``, ``sign``, and
``wait_for(predicate, timeout)`` / ``wait_deliveries_settled(timeout)`` to wait on a deadline.
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import io
import json
import queue
import re
import secrets
import socket
import string
import sys
import tarfile
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

import httpx
from standardwebhooks import Webhook

from tests.ports import free_port

STATUSES = ("starting", "processing", "succeeded", "failed", "canceled")
TERMINAL = ("succeeded", "failed", "canceled")
EVENTS = ("start", "output", "logs", "completed")
_ALNUM = string.ascii_lowercase + string.digits
_MODEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


class ControlError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value of a delivery: ``v1,<base64 HMAC-SHA256>`` (Standard Webhooks)."""
    return Webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp, tz=timezone.utc), body)


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _training_id() -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(26))


def _msg_id() -> str:
    return "msg_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(27))


class ReplicateServer:
    def __init__(self, tokens: tuple[str, ...] | list[str] | None = None, *, port: int | None = None,
                 page_size: int = 100, webhook_attempts: int = 4, webhook_backoff: float = 0.05,
                 webhook_timeout: float = 5.0) -> None:
        self.token = "r8_" + secrets.token_urlsafe(27)
        self.tokens: set[str] = set(tokens) if tokens else {self.token}
        if tokens:
            self.token = list(tokens)[0]
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.page_size = page_size
        self.webhook_attempts = webhook_attempts
        self.webhook_backoff = webhook_backoff
        self.webhook_timeout = webhook_timeout
        self.secret = new_secret()
        self.webhooks_enabled = True
        self.outage: dict[str, Any] = {"enabled": False, "mode": "status", "status": 503}
        self.auto: dict[str, Any] = {"enabled": False, "starting_seconds": 0.5, "processing_seconds": 2.0}
        self._cond = threading.Condition(threading.RLock())
        self._trainings: dict[str, dict[str, Any]] = {}
        self._order: list[str] = []  # ids, oldest first
        self._deliveries: list[dict[str, Any]] = []
        self._requests: list[dict[str, Any]] = []
        self._outbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._timers: list[threading.Timer] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._sender: threading.Thread | None = None
        self._stopping = threading.Event()

    # ---- lifecycle

    def start(self) -> "ReplicateServer":
        server = self

        class Handler(_Handler):
            replicate = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="replicate-stand-in",
                                        daemon=True)
        self._thread.start()  # the socket already listens: bound in the constructor above
        self._sender = threading.Thread(target=self._send_loop, name="replicate-webhooks", daemon=True)
        self._sender.start()
        return self

    def stop(self) -> None:
        with self._cond:
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
        if self._sender is not None:
            self._stopping.set()  # what is still queued or being retried is given up
            self._outbox.put(None)
            self._sender.join(timeout=30)
            self._sender = None
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> "ReplicateServer":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # ---- waiting

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
        """Wait until ``predicate()`` is truthy and return its value; ``TimeoutError`` past ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()  # outside the lock: it may call this server over HTTP
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout} s")
            with self._cond:  # woken early by any change of state
                self._cond.wait(min(interval, remaining))

    def wait_deliveries_settled(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until no delivery is pending (each delivered or given up); return all deliveries."""
        self.wait_for(lambda: all(d["state"] != "pending" for d in self.deliveries()), timeout)
        return self.deliveries()

    # ---- state read by tests

    def training(self, training_id: str) -> dict[str, Any]:
        with self._cond:
            training = self._trainings.get(training_id)
            if training is None:
                raise ControlError(404, "Not found.")
            return copy.deepcopy(training)

    def trainings(self) -> list[dict[str, Any]]:
        with self._cond:
            return [copy.deepcopy(self._trainings[i]) for i in reversed(self._order)]

    def deliveries(self, training_id: str | None = None) -> list[dict[str, Any]]:
        with self._cond:
            return [copy.deepcopy(d) for d in self._deliveries if training_id in (None, d["training_id"])]

    @property
    def requests(self) -> list[dict[str, Any]]:
        with self._cond:
            return copy.deepcopy(self._requests)

    def clear_requests(self) -> None:
        with self._cond:
            self._requests.clear()

    # ---- control

    def set_webhooks(self, enabled: bool) -> None:
        with self._cond:
            self.webhooks_enabled = bool(enabled)

    def set_outage(self, enabled: bool, mode: str = "status", status: int = 503) -> None:
        if mode not in ("status", "drop"):
            raise ControlError(422, "mode must be 'status' or 'drop'")
        if not isinstance(status, int) or not 400 <= status <= 599:
            raise ControlError(422, "status must be an HTTP error status")
        with self._cond:
            self.outage = {"enabled": bool(enabled), "mode": mode, "status": status}

    def set_auto(self, enabled: bool, starting_seconds: float = 0.5, processing_seconds: float = 2.0) -> None:
        with self._cond:
            self.auto = {"enabled": bool(enabled), "starting_seconds": float(starting_seconds),
                         "processing_seconds": float(processing_seconds)}

    def set_tokens(self, tokens: list[str]) -> None:
        with self._cond:
            self.tokens = set(tokens)

    def rotate_secret(self) -> str:
        with self._cond:
            self.secret = new_secret()
            return self.secret

    def sign(self, msg_id: str, timestamp: int, body: bytes) -> str:
        return sign(self.secret, msg_id, timestamp, body)

    def reset(self) -> None:
        with self._cond:
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
            self._trainings.clear()
            self._order.clear()
            self._deliveries.clear()
            self._requests.clear()
            self.webhooks_enabled = True
            self.outage = {"enabled": False, "mode": "status", "status": 503}
            self.auto = {**self.auto, "enabled": False}
            self._cond.notify_all()

    def advance(self, training_id: str, status: str, *, logs: str | None = None, output: Any = None,
                predict_time: float | None = None, error: str | None = None) -> dict[str, Any]:
        """Move a training on: ``processing`` (optionally appending ``logs``/setting ``output``),
        ``succeeded``, ``failed`` or ``canceled``. Sends the webhook this change causes."""
        if status not in STATUSES or status == "starting":
            raise ControlError(422, f"status must be one of {', '.join(STATUSES[1:])}")
        if logs is not None and not isinstance(logs, str):
            raise ControlError(422, "logs must be a string")
        if predict_time is not None and (not isinstance(predict_time, (int, float)) or predict_time < 0):
            raise ControlError(422, "predict_time must be a non-negative number")
        with self._cond:
            training = self._trainings.get(training_id)
            if training is None:
                raise ControlError(404, "Not found.")
            if training["status"] in TERMINAL:
                raise ControlError(409, f"training is already {training['status']}")
            now = time.time()
            if logs:
                training["logs"] += logs
            if status == "processing":
                event = "output" if output is not None else "logs"
                training["status"] = "processing"
                if training["started_at"] is None:
                    training["started_at"] = _iso(now)
                    training["_started"] = now
                if output is not None:
                    training["output"] = output
            else:
                event = "completed"
                self._finish(training, status, now, predict_time)
                if status == "succeeded":
                    training["output"] = output if output is not None else self._default_output(training)
                elif status == "failed":
                    training["error"] = error or "Training failed."
            self._notify(training, event)
            return _public(training)

    def cancel(self, training_id: str) -> dict[str, Any]:
        with self._cond:
            training = self._trainings.get(training_id)
            if training is None:
                raise ControlError(404, "Not found.")
            if training["status"] not in TERMINAL:
                self._finish(training, "canceled", time.time(), None)
                self._notify(training, "completed")
            return _public(training)

    def redeliver(self, training_id: str, timestamp: str = "now") -> dict[str, Any]:
        if timestamp not in ("now", "original"):
            raise ControlError(422, "timestamp must be 'now' or 'original'")
        with self._cond:
            if training_id not in self._trainings:
                raise ControlError(404, "Not found.")
            earlier = [d for d in self._deliveries if d["training_id"] == training_id and d["kind"] == "event"]
            if not earlier:
                raise ControlError(409, "no webhook was sent for this training")
            last = earlier[-1]
            fixed = None
            if timestamp == "original":
                if not last["attempts"]:
                    raise ControlError(409, "the last webhook has not been attempted yet")
                first = last["attempts"][0]
                fixed = (first["timestamp"], first["signature"])
            return self._enqueue(last["training_id"], last["event"], last["url"], last["body"].encode(),
                                 kind="redelivery", webhook_id=last["webhook_id"], fixed=fixed)

    def forge(self, training_id: str, kind: str, seconds: int = 600) -> dict[str, Any]:
        if kind not in ("bad_signature", "old_timestamp", "future_timestamp"):
            raise ControlError(422, "kind must be bad_signature, old_timestamp or future_timestamp")
        with self._cond:
            training = self._trainings.get(training_id)
            if training is None:
                raise ControlError(404, "Not found.")
            if not training["webhook"]:
                raise ControlError(409, "the training has no webhook")
            body = json.dumps(_public(training)).encode()
            msg_id = _msg_id()
            stamp = int(time.time())
            if kind == "bad_signature":
                signature = sign(new_secret(), msg_id, stamp, body)
            else:
                stamp += -seconds if kind == "old_timestamp" else seconds
                signature = self.sign(msg_id, stamp, body)
            return self._enqueue(training_id, "forged", training["webhook"], body, kind=kind, webhook_id=msg_id,
                                 fixed=(stamp, signature))

    # ---- the API's own actions (called by the handler, under no lock)

    def create(self, owner: str, name: str, version: str, body: dict[str, Any]) -> dict[str, Any]:
        now = time.time()
        training_id = _training_id()
        training = {
            "id": training_id, "model": f"{owner}/{name}", "version": version,
            "destination": body["destination"], "input": body["input"], "logs": "", "error": None,
            "status": "starting", "created_at": _iso(now), "started_at": None, "completed_at": None,
            "output": None, "metrics": {}, "source": "api",
            "urls": {"get": f"{self.url}/v1/trainings/{training_id}",
                     "cancel": f"{self.url}/v1/trainings/{training_id}/cancel"},
            "webhook": body.get("webhook"), "webhook_events_filter": body.get("webhook_events_filter"),
            "_started": None,
        }
        with self._cond:
            self._trainings[training_id] = training
            self._order.append(training_id)
            self._notify(training, "start")
            if self.auto["enabled"]:
                self._schedule(self.auto["starting_seconds"], training_id, "processing",
                               logs="Training started.\n")
                self._schedule(self.auto["starting_seconds"] + self.auto["processing_seconds"], training_id,
                               "succeeded", logs="Training finished.\n",
                               predict_time=self.auto["processing_seconds"])
            return _public(training)

    def weights_archive(self, training_id: str) -> bytes | None:
        with self._cond:
            training = self._trainings.get(training_id)
            if training is None or training["status"] != "succeeded":
                return None
            manifest = json.dumps({"training": training_id, "model": training["model"],
                                   "version": training["version"], "input": training["input"]},
                                  indent=2, sort_keys=True).encode()
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            info = tarfile.TarInfo("training.json")
            info.size = len(manifest)
            info.mtime = 0
            archive.addfile(info, io.BytesIO(manifest))
        return buffer.getvalue()

    def log_request(self, entry: dict[str, Any]) -> None:
        with self._cond:
            self._requests.append(entry)
            self._cond.notify_all()

    # ---- internals (the lock is held by the callers)

    def _default_output(self, training: dict[str, Any]) -> dict[str, Any]:
        digest = hashlib.sha256(training["id"].encode()).hexdigest()
        return {"version": f"{training['destination']}:{digest}",
                "weights": f"{self.url}/delivery/{training['id']}/trained_model.tar"}

    def _finish(self, training: dict[str, Any], status: str, now: float, predict_time: float | None) -> None:
        training["status"] = status
        training["completed_at"] = _iso(now)
        if predict_time is None:
            predict_time = round(now - training["_started"], 6) if training["_started"] else 0.0
        training["metrics"] = {"predict_time": float(predict_time)}

    def _schedule(self, delay: float, training_id: str, status: str, **changes: Any) -> None:
        def step() -> None:
            try:
                self.advance(training_id, status, **changes)
            except ControlError:
                pass  # canceled or advanced by hand meanwhile

        timer = threading.Timer(delay, step)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def _notify(self, training: dict[str, Any], event: str) -> None:
        self._cond.notify_all()
        url = training["webhook"]
        if not url or not self.webhooks_enabled:
            return
        wanted = training["webhook_events_filter"]
        if wanted is not None and event not in ("start", "completed") and event not in wanted:
            return
        self._enqueue(training["id"], event, url, json.dumps(_public(training)).encode(), kind="event",
                      webhook_id=_msg_id(), fixed=None)

    def _enqueue(self, training_id: str, event: str, url: str, body: bytes, *, kind: str, webhook_id: str,
                 fixed: tuple[int, str] | None) -> dict[str, Any]:
        delivery = {"seq": len(self._deliveries) + 1, "webhook_id": webhook_id, "training_id": training_id,
                    "event": event, "kind": kind, "url": url, "body": body.decode(), "state": "pending",
                    "attempts": [], "_fixed": fixed}
        self._deliveries.append(delivery)
        self._outbox.put(delivery)
        self._cond.notify_all()
        return _public_delivery(delivery)

    def _send_loop(self) -> None:
        with httpx.Client(timeout=self.webhook_timeout, trust_env=False) as client:
            while (delivery := self._outbox.get()) is not None:
                self._deliver(client, delivery)

    def _deliver(self, client: httpx.Client, delivery: dict[str, Any]) -> None:
        body = delivery["body"].encode()
        # forged and replayed-as-captured deliveries are sent once, as they are
        attempts = 1 if delivery["_fixed"] else self.webhook_attempts
        for attempt in range(attempts):
            if attempt and self._stopping.wait(min(self.webhook_backoff * 2 ** (attempt - 1), 2.0)):
                break
            if self._stopping.is_set():
                break
            if delivery["_fixed"]:
                stamp, signature = delivery["_fixed"]
            else:
                stamp = int(time.time())
                with self._cond:
                    signature = self.sign(delivery["webhook_id"], stamp, body)
            record: dict[str, Any] = {"timestamp": stamp, "signature": signature, "status": None, "error": None}
            try:
                answer = client.post(delivery["url"], content=body, headers={
                    "content-type": "application/json", "user-agent": "Replicate-Webhooks/1.0",
                    "webhook-id": delivery["webhook_id"], "webhook-timestamp": str(stamp),
                    "webhook-signature": signature})
                record["status"] = answer.status_code
            except httpx.HTTPError as exc:
                record["error"] = f"{type(exc).__name__}: {exc}"
            with self._cond:
                delivery["attempts"].append(record)
                ok = record["status"] is not None and 200 <= record["status"] < 300
                if ok or attempt == attempts - 1:
                    delivery["state"] = "delivered" if ok else "failed"
                self._cond.notify_all()
            if ok:
                return
        with self._cond:
            if delivery["state"] == "pending":
                delivery["state"] = "failed"
                delivery["attempts"].append({"timestamp": None, "signature": None, "status": None,
                                             "error": "the server stopped"})
                self._cond.notify_all()


def _public(training: dict[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in training.items() if not k.startswith("_")}


def _public_delivery(delivery: dict[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in delivery.items() if not k.startswith("_")}


def _validate_create(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "The request body must be a JSON object."
    destination = body.get("destination")
    if not isinstance(destination, str) or not _MODEL_RE.match(destination):
        return "destination: must be a model in the form owner/name."
    if not isinstance(body.get("input"), dict):
        return "input: must be an object."
    webhook = body.get("webhook")
    if webhook is not None and (not isinstance(webhook, str) or urlsplit(webhook).scheme not in ("http", "https")
                                or not urlsplit(webhook).netloc):
        return "webhook: must be an HTTP(S) URL."
    events = body.get("webhook_events_filter")
    if events is not None and (not isinstance(events, list) or not all(e in EVENTS for e in events)):
        return f"webhook_events_filter: each value must be one of {', '.join(EVENTS)}."
    return None


_CREATE = re.compile(r"^/v1/models/([^/]+)/([^/]+)/versions/([^/]+)/trainings/?$")
_GET = re.compile(r"^/v1/trainings/([^/]+)/?$")
_CANCEL = re.compile(r"^/v1/trainings/([^/]+)/cancel/?$")
_DELIVERY = re.compile(r"^/delivery/([^/]+)/trained_model\.tar$")
_CONTROL_TRAINING = re.compile(r"^/_control/trainings/([^/]+)(?:/(advance|redeliver|forge))?/?$")


class _Handler(BaseHTTPRequestHandler):
    replicate: ReplicateServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read ``requests`` instead
        return None

    # ---- plumbing

    def _send(self, status: int, body: Any = None) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        self._status = status

    def _raw_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        try:
            if url.path.startswith("/_control/"):
                return self._control(method, url.path, parse_qs(url.query), self._raw_body())
            if url.path.startswith("/v1/") or url.path == "/v1":
                return self._api(method, url.path, parse_qs(url.query), url.query)
            match = _DELIVERY.match(url.path)
            if match and method == "GET":
                archive = self.replicate.weights_archive(match.group(1))
                if archive is None:
                    return self._send(404, {"detail": "Not found."})
                self.send_response(200)
                self.send_header("Content-Type", "application/x-tar")
                self.send_header("Content-Length", str(len(archive)))
                self.end_headers()
                self.wfile.write(archive)
                return None
            self._send(404, {"detail": "Not found."})
        except ControlError as exc:
            self._send(exc.status, {"detail": exc.detail})

    # ---- the Replicate API

    def _api(self, method: str, path: str, query: dict[str, list[str]], raw_query: str) -> None:
        raw = self._raw_body()
        try:
            logged_body: Any = json.loads(raw) if raw else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            logged_body = raw.decode(errors="replace")
        entry = {"method": method, "path": path, "query": raw_query, "authorization":
                 self.headers.get("Authorization"), "body": logged_body, "status": None}
        self._status = None
        try:
            self._api_route(method, path, query, raw)
        except ControlError as exc:
            self._send(exc.status, {"detail": exc.detail, "status": exc.status})
        finally:
            entry["status"] = self._status  # None: the connection was dropped
            self.replicate.log_request(entry)

    def _api_route(self, method: str, path: str, query: dict[str, list[str]], raw: bytes) -> None:
        server = self.replicate
        outage = dict(server.outage)
        if outage["enabled"]:
            if outage["mode"] == "drop":
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return None
            return self._send(outage["status"], {"detail": "Service unavailable.", "status": outage["status"]})
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() not in ("bearer", "token") or token.strip() not in server.tokens:
            return self._send(401, {"detail": "Invalid token.", "status": 401, "title": "Unauthenticated"})

        if match := _CREATE.match(path):
            if method != "POST":
                return self._send(405, {"detail": "Method not allowed."})
            try:
                body = json.loads(raw or b"")
            except (json.JSONDecodeError, UnicodeDecodeError):
                return self._send(400, {"detail": "The request body is not valid JSON.", "status": 400})
            problem = _validate_create(body)
            if problem:
                return self._send(422, {"detail": problem, "status": 422, "title": "Input validation failed"})
            return self._send(201, server.create(*match.groups(), body))
        if match := _CANCEL.match(path):
            if method != "POST":
                return self._send(405, {"detail": "Method not allowed."})
            return self._send(200, server.cancel(match.group(1)))
        if path.rstrip("/") == "/v1/trainings":
            if method != "GET":
                return self._send(405, {"detail": "Method not allowed."})
            return self._list(query)
        if match := _GET.match(path):
            if method != "GET":
                return self._send(405, {"detail": "Method not allowed."})
            return self._send(200, _public(server.training(match.group(1))))
        if path == "/v1/webhooks/default/secret" and method == "GET":
            return self._send(200, {"key": server.secret})
        if path.rstrip("/") == "/v1/account" and method == "GET":
            return self._send(200, {"type": "organization", "username": "standin", "name": "Stand-in account",
                                    "github_url": None})
        return self._send(404, {"detail": "Not found."})

    def _list(self, query: dict[str, list[str]]) -> None:
        server = self.replicate
        cursor = query.get("cursor", [""])[0]
        try:
            offset = int(base64.urlsafe_b64decode(cursor.encode()).decode()) if cursor else 0
            if offset < 0:
                raise ValueError(cursor)
        except ValueError:
            return self._send(400, {"detail": "Invalid cursor.", "status": 400})
        everything = [_public(t) for t in server.trainings()]
        page = everything[offset:offset + server.page_size]

        def link(at: int) -> str:
            return f"{server.url}/v1/trainings?cursor={base64.urlsafe_b64encode(str(at).encode()).decode()}"

        self._send(200, {
            "next": link(offset + server.page_size) if offset + server.page_size < len(everything) else None,
            "previous": link(max(offset - server.page_size, 0)) if offset > 0 else None,
            "results": page})

    # ---- control

    def _control(self, method: str, path: str, query: dict[str, list[str]], raw: bytes) -> None:
        server = self.replicate
        try:
            body = json.loads(raw) if raw else {}
        except (json.JSONDecodeError, UnicodeDecodeError):
            return self._send(400, {"detail": "The request body is not valid JSON."})
        if not isinstance(body, dict):
            return self._send(400, {"detail": "The request body must be a JSON object."})
        route = (method, path.rstrip("/"))
        if match := _CONTROL_TRAINING.match(path):
            training_id, action = match.groups()
            if action is None and method == "GET":
                return self._send(200, _public(server.training(training_id)))
            if action == "advance" and method == "POST":
                fields = {k: body.get(k) for k in ("logs", "output", "predict_time", "error")}
                return self._send(200, server.advance(training_id, str(body.get("status")), **fields))
            if action == "redeliver" and method == "POST":
                return self._send(202, server.redeliver(training_id, body.get("timestamp", "now")))
            if action == "forge" and method == "POST":
                seconds = body.get("seconds", 600)
                if not isinstance(seconds, int) or seconds <= 0:
                    return self._send(422, {"detail": "seconds must be a positive integer"})
                return self._send(202, server.forge(training_id, str(body.get("kind")), seconds))
        elif route == ("GET", "/_control/deliveries"):
            return self._send(200, server.deliveries(query.get("training_id", [None])[0]))
        elif route == ("GET", "/_control/requests"):
            return self._send(200, server.requests)
        elif route == ("DELETE", "/_control/requests"):
            server.clear_requests()
            return self._send(204)
        elif route == ("POST", "/_control/webhooks"):
            server.set_webhooks(bool(body.get("enabled", True)))
            return self._send(200, {"enabled": server.webhooks_enabled})
        elif route == ("POST", "/_control/outage"):
            server.set_outage(bool(body.get("enabled", True)), body.get("mode", "status"), body.get("status", 503))
            return self._send(200, server.outage)
        elif route == ("POST", "/_control/secret/rotate"):
            return self._send(200, {"key": server.rotate_secret()})
        elif route == ("POST", "/_control/tokens"):
            tokens = body.get("tokens")
            if not isinstance(tokens, list) or not all(isinstance(t, str) and t for t in tokens):
                return self._send(422, {"detail": "tokens must be a list of non-empty strings"})
            server.set_tokens(tokens)
            return self._send(200, {"tokens": sorted(server.tokens)})
        elif route == ("POST", "/_control/auto"):
            server.set_auto(bool(body.get("enabled", True)), body.get("starting_seconds", 0.5),
                            body.get("processing_seconds", 2.0))
            return self._send(200, server.auto)
        elif route == ("POST", "/_control/reset"):
            server.reset()
            return self._send(204)
        return self._send(404, {"detail": "Not found."})

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Replicate trainings API stand-in on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    parser.add_argument("--token", action="append", default=[], help="an accepted API token (repeatable)")
    parser.add_argument("--auto", action="store_true", help="run new trainings to success by themselves")
    parser.add_argument("--starting-seconds", type=float, default=0.5)
    parser.add_argument("--processing-seconds", type=float, default=2.0)
    args = parser.parse_args(argv)
    server = ReplicateServer(tokens=args.token or None, port=args.port or None)
    server.set_auto(args.auto, args.starting_seconds, args.processing_seconds)
    server.start()
    print(server.url, flush=True)
    print(f"token: {server.token}", file=sys.stderr, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
