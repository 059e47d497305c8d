"""Temporal client construction and idempotent search-attribute registration."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client, TLSConfig
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.observability.temporal_interceptor import CorrelationInterceptor
from activities.settings import TemporalSettings
from workflows.contracts import SEARCH_ATTRIBUTES

log = logging.getLogger(__name__)


def _tls(cfg: TemporalSettings) -> TLSConfig | bool:
    if not (cfg.tls or cfg.tls_ca_path or cfg.tls_cert_path):
        return False
    read = lambda p: Path(p).read_bytes() if p else None  # noqa: E731
    return TLSConfig(server_root_ca_cert=read(cfg.tls_ca_path), client_cert=read(cfg.tls_cert_path),
                     client_private_key=read(cfg.tls_key_path))


async def connect(cfg: TemporalSettings, lazy: bool = False, namespace: str | None = None) -> Client:
    """A client of the control namespace (or ``namespace``) with the pydantic converter; ``lazy``
    defers dialing to the first call (the API starts, and reports not-ready, while Temporal is down)."""
    return await Client.connect(cfg.address, namespace=namespace or cfg.namespace, tls=_tls(cfg),
                                api_key=cfg.api_key, data_converter=pydantic_data_converter, lazy=lazy,
                                interceptors=[CorrelationInterceptor()])


async def connect_with_retry(cfg: TemporalSettings, stop: asyncio.Event | None = None,
                             max_delay: float = 10.0) -> Client | None:
    """Dial until Temporal answers (it may still be starting, or restarting); None if stopped first."""
    delay = 0.2
    while stop is None or not stop.is_set():
        try:
            return await connect(cfg, lazy=False)
        except RuntimeError as exc:
            log.warning("Temporal at %s not reachable yet (%s); retrying in %.1fs", cfg.address, exc, delay)
            try:
                await asyncio.wait_for(stop.wait(), delay) if stop else await asyncio.sleep(delay)
            except asyncio.TimeoutError:
                pass
            delay = min(max_delay, delay * 2)
    return None


async def ensure_search_attributes(client: Client) -> list[str]:
    """Register the project's search attributes that the namespace lacks; returns the added names."""
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace))
    known = set(existing.custom_attributes) | set(existing.system_attributes)
    missing = {key.name: IndexedValueType.ValueType(key.indexed_value_type) for key in SEARCH_ATTRIBUTES
               if key.name not in known}
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing))
        log.info("registered search attributes: %s", ", ".join(sorted(missing)))
    return sorted(missing)
