"""Receiving a provider's webhook: source allowlist, signature, once-only, then the training's state.

Order of checks: the sender's address (``webhook_allowed_ips``, taken through trusted proxies only) ->
the training it names (unknown: refused and audited) -> the signature with the account's secret (the
one of the token that created the training; fetched from the provider and cached, fetched again once
when a signature does not match, for a rotated secret) -> the delivery id (a repeat is acknowledged,
not applied) -> the state, never moving backwards.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import threading
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from activities.audit.trail import audit
from activities.db.models import Job
from activities.db.models_providers import ProviderConfig, ProviderTraining, WebhookReceipt
from activities.errors import Forbidden, InvalidInput, NotFound
from activities.providers.base import CloudProvider, ProviderCallError, WebhookRejected

SECRET_TTL_SECONDS = 3600.0
REFETCH_AFTER_SECONDS = 30.0  # a mismatch fetches the secret again at most this often


def allowed(ip: str | None, row: ProviderConfig) -> bool:
    networks = row.webhook_allowed_ips
    if not networks:
        return True
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in networks)


def refuse_source(session: Session, provider: str, ip: str | None) -> Forbidden:
    audit(session, f"ip:{ip}", "webhook.rejected", "provider", provider,
          {"reason": "source address not in webhook_allowed_ips", "ip": ip}, ip=ip)
    session.commit()
    return Forbidden(f"webhook from {ip} refused: not in the allowed addresses of {provider}")


def training_id_of(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        raise InvalidInput("webhook body is not JSON") from None
    training_id = data.get("id") if isinstance(data, dict) else None
    if not isinstance(training_id, str) or not training_id:
        raise InvalidInput("webhook body names no training (id)")
    return training_id


def unknown_training(session: Session, provider: str, training_id: str, ip: str | None) -> NotFound:
    audit(session, f"ip:{ip}", "webhook.unknown_training", "provider", provider,
          {"training_id": training_id[:200], "ip": ip}, ip=ip)
    session.commit()
    return NotFound(f"no job runs {provider} training {training_id[:200]!r}")


class SecretCache:
    """Webhook secrets by provider and token (the token's hash as the key, never the token)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str], tuple[str, float]] = {}

    async def verify(self, provider: CloudProvider, token: str, fetch: Callable[[], Awaitable[str]],
                     headers: Mapping[str, str], body: bytes) -> str:
        key = (provider.name, hashlib.sha256(token.encode()).hexdigest())
        now = time.monotonic()
        with self._lock:
            cached = self._items.get(key)
        if cached is None or now - cached[1] > SECRET_TTL_SECONDS:
            cached = (await fetch(), now)
            with self._lock:
                self._items[key] = cached
        try:
            return provider.verify_webhook(cached[0], headers, body)
        except WebhookRejected:
            if now - cached[1] < REFETCH_AFTER_SECONDS:
                raise
        fresh = (await fetch(), time.monotonic())  # the secret may have been rotated
        with self._lock:
            self._items[key] = fresh
        return provider.verify_webhook(fresh[0], headers, body)


def refuse_signature(session: Session, provider: str, training_id: str, ip: str | None, why: str) -> None:
    audit(session, f"ip:{ip}", "webhook.rejected", "provider", provider,
          {"reason": why[:300], "training_id": training_id[:200], "ip": ip}, ip=ip)
    session.commit()


def first_delivery(session: Session, provider: str, webhook_id: str, training_id: str) -> bool:
    """Record the delivery; False when it was already applied (the caller acknowledges it)."""
    if session.get(WebhookReceipt, (provider, webhook_id[:255])) is not None:
        return False
    session.add(WebhookReceipt(provider=provider, webhook_id=webhook_id[:255], training_id=training_id))
    try:
        session.flush()
    except IntegrityError:  # the same delivery, concurrently
        session.rollback()
        return False
    return True


@dataclass
class Received:
    job_id: str
    applied: bool
    status: str


def parse(provider: CloudProvider, body: bytes) -> Any:
    try:
        return provider.parse_training(json.loads(body))
    except ValueError:
        raise InvalidInput("webhook body is not JSON") from None
    except ProviderCallError as exc:  # signed, but not a training: retrying it would not help
        raise InvalidInput(f"webhook body is not a training: {exc.detail}") from None


def owner_of(session: Session, row: ProviderTraining) -> str | None:
    job = session.get(Job, row.job_id)
    return job.owner_id if job is not None else None
