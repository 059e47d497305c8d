"""Connecting to Temporal with the settings from the register answer.

``temporal`` in the answer is ``{"address", "namespace", "tls"}``; ``tls`` is either a bool or
an object with optional PEM strings ``server_root_ca_cert``, ``client_cert``,
``client_private_key`` and a ``domain`` (server name override).
"""

from __future__ import annotations

import logging
from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import TLSConfig

log = logging.getLogger(__name__)


def _pem(value: Any) -> bytes | None:
    return value.encode() if isinstance(value, str) and value else None


def tls_option(tls: Any) -> bool | TLSConfig:
    """Map the answer's ``tls`` field to ``Client.connect(tls=...)``."""
    if isinstance(tls, dict):
        if tls.get("enabled") is False:
            return False
        return TLSConfig(server_root_ca_cert=_pem(tls.get("server_root_ca_cert") or tls.get("ca_cert")),
                         client_cert=_pem(tls.get("client_cert")),
                         client_private_key=_pem(tls.get("client_private_key") or tls.get("client_key")),
                         domain=tls.get("domain") or None)
    return bool(tls)


async def connect_temporal(temporal: dict[str, Any], address_override: str | None, identity: str) -> Client:
    address = address_override or temporal.get("address")
    if not address:
        raise ValueError("the register answer names no Temporal address; pass --temporal-address")
    namespace = temporal.get("namespace") or "default"
    tls = tls_option(temporal.get("tls"))
    log.info("connecting to Temporal at %s (namespace %s, tls %s)", address, namespace, bool(tls))
    return await Client.connect(address, namespace=namespace, tls=tls, identity=identity,
                                data_converter=pydantic_data_converter)
