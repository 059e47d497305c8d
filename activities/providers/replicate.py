"""Replicate: trainings over its HTTP API (``/v1/models/{owner}/{name}/versions/{version}/trainings``,
``/v1/trainings/{id}``, ``/v1/trainings/{id}/cancel``) and its webhooks, signed per Standard Webhooks
with the account's secret (``/v1/webhooks/default/secret``).

Status map: ``starting`` -> queued, ``processing`` -> running, ``succeeded`` -> completed, ``failed`` ->
failed, ``canceled`` -> cancelled. The actual cost is ``metrics.predict_time`` (compute seconds, without
time in Replicate's queue) at the hardware's hourly rate.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import httpx
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from activities.providers.base import (
    Connection, ProviderCallError, ProviderRefused, TrainingRequest, TrainingState, WebhookRejected,
)

NAME = "replicate"
TOKEN_ENV_VARS = ("SIMPLETUNER_REPLICATE_API_TOKEN", "REPLICATE_API_TOKEN")  # the global credential
BASE_URL_ENV_VAR = "REPLICATE_BASE_URL"
STATUS_TO_JOB = {"starting": "queued", "processing": "running", "succeeded": "completed", "failed": "failed",
                 "canceled": "cancelled"}
_RANK = {"creating": 0, "starting": 1, "processing": 2, "succeeded": 3, "failed": 3, "canceled": 3}
TERMINAL = frozenset({"succeeded", "failed", "canceled"})
VERSION_RE = re.compile(r"^(?:(?P<owner>[A-Za-z0-9_.-]+)/(?P<name>[A-Za-z0-9_.-]+):)?(?P<version>[A-Za-z0-9]{1,128})$")
TOLERANCE_SECONDS = 5 * 60


class ReplicateProvider:
    name = NAME
    default_base_url = "https://api.replicate.com"
    terminal = TERMINAL

    def job_status(self, status: str) -> str:
        return STATUS_TO_JOB.get(status, "queued")

    def rank(self, status: str) -> int:
        return _RANK.get(status, 0)

    # ---- calls -----------------------------------------------------------------------------------

    async def create_training(self, conn: Connection, req: TrainingRequest) -> TrainingState:
        owner, name, version = split_version(req.version)
        body: dict[str, Any] = {"input": req.input}
        if req.destination:
            body["destination"] = req.destination
        if req.webhook_url:
            body["webhook"] = req.webhook_url
            body["webhook_events_filter"] = req.webhook_events
        data = await self._call(conn, "POST", f"/v1/models/{owner}/{name}/versions/{version}/trainings", json=body)
        return self.parse_training(data)

    async def get_training(self, conn: Connection, training_id: str) -> TrainingState:
        return self.parse_training(await self._call(conn, "GET", f"/v1/trainings/{_safe(training_id)}"))

    async def cancel_training(self, conn: Connection, training_id: str) -> TrainingState:
        return self.parse_training(await self._call(conn, "POST", f"/v1/trainings/{_safe(training_id)}/cancel"))

    async def validate(self, conn: Connection) -> dict[str, Any]:
        """A real call with the token: the account it belongs to."""
        data = await self._call(conn, "GET", "/v1/account")
        return {"account": data.get("username"), "type": data.get("type")}

    async def webhook_secret(self, conn: Connection) -> str:
        data = await self._call(conn, "GET", "/v1/webhooks/default/secret")
        key = data.get("key")
        if not isinstance(key, str) or not key.startswith("whsec_"):
            raise ProviderCallError("replicate: the webhook secret answer has no whsec_ key")
        return key

    async def _call(self, conn: Connection, method: str, path: str, **kw: Any) -> dict[str, Any]:
        url = conn.base_url.rstrip("/") + path
        headers = {"Authorization": f"Bearer {conn.token}", "Accept": "application/json"}
        try:
            answer = await conn.client.request(method, url, headers=headers, **kw)
        except httpx.HTTPError as exc:
            raise ProviderCallError(f"replicate unreachable: {type(exc).__name__}: {exc}") from None
        if answer.status_code == 429 or answer.status_code >= 500:
            raise ProviderCallError(f"replicate answered {answer.status_code} to {method} {path}")
        try:
            data = answer.json()
        except ValueError:
            raise ProviderCallError(f"replicate answered {answer.status_code} without JSON to {method} {path}") from None
        if answer.status_code >= 400:
            detail = data.get("detail") if isinstance(data, dict) else None
            raise ProviderRefused(f"replicate refused {method} {path} ({answer.status_code}): {detail or data}")
        if not isinstance(data, dict):
            raise ProviderCallError(f"replicate answered {method} {path} with a non-object")
        return data

    # ---- webhooks and answers --------------------------------------------------------------------

    def verify_webhook(self, secret: str, headers: Mapping[str, str], body: bytes, now: float | None = None) -> str:
        """The delivery's ``webhook-id`` once the signature and timestamp check out."""
        wanted = {k: headers.get(k) or "" for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
        try:
            Webhook(secret).verify(body, wanted, json_parse=False)
        except WebhookVerificationError as exc:
            raise WebhookRejected(f"webhook refused: {exc}") from None
        return wanted["webhook-id"]

    def parse_training(self, data: Mapping[str, Any]) -> TrainingState:
        training_id, status = data.get("id"), data.get("status")
        if not isinstance(training_id, str) or not training_id or status not in _RANK:
            raise ProviderCallError(f"replicate: not a training object (id {training_id!r}, status {status!r})")
        metrics = data.get("metrics") if isinstance(data.get("metrics"), dict) else {}
        predict = metrics.get("predict_time")
        logs = data.get("logs")
        error = data.get("error")
        return TrainingState(training_id=training_id, status=status, logs=logs if isinstance(logs, str) else "",
                             output=data.get("output"), error=str(error) if error else None,
                             predict_time=float(predict) if isinstance(predict, (int, float)) and predict >= 0 else None,
                             raw=dict(data))

    def actual_cost_usd(self, state: TrainingState, hourly_rate_usd: float | None, gpu_count: int) -> float | None:
        if state.predict_time is None or hourly_rate_usd is None:
            return None
        return round(state.predict_time / 3600.0 * hourly_rate_usd * max(1, gpu_count), 4)


def split_version(value: str) -> tuple[str, str, str]:
    """("owner", "name", "version") of "owner/name:version"; a bare version id is not enough to create
    a training (the path names the model)."""
    match = VERSION_RE.match(value or "")
    if match is None or not match.group("owner"):
        raise ProviderRefused(f"replicate version {value!r} must be 'owner/model:version-id'")
    return match.group("owner"), match.group("name"), match.group("version")


def _safe(training_id: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,128}", training_id or ""):
        raise ProviderRefused(f"not a replicate training id: {training_id!r}")
    return training_id
