"""Connecting to Temporal: the address and namespace the register answer names (the GPU namespace),
with credentials configured on this host only.

The answer is ``{"address", "namespace", "tls"}``; it never carries certificates or keys. TLS (a CA,
a client certificate and key for mTLS) and an API key come from the agent's own flags or
``SIMPLETUNER_WORKER_TEMPORAL_*`` variables; a production cluster gives these credentials access to
the GPU namespace only (see temporal-dev/README.md).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import TLSConfig

from activities.observability.temporal_interceptor import CorrelationInterceptor

log = logging.getLogger(__name__)


class AccessError(ValueError):
    """A Temporal credential setting is unusable; the message names the flag."""


@dataclass(frozen=True)
class TemporalAccess:
    """This host's Temporal credentials (PEM bytes read at start-up, never logged)."""
    address: str | None = None
    ca_cert: bytes | None = None
    client_cert: bytes | None = None
    client_key: bytes | None = None
    server_name: str | None = None
    api_key: str | None = None

    @property
    def tls_configured(self) -> bool:
        return bool(self.ca_cert or self.client_cert or self.server_name)


def _read(path: str | None, flag: str) -> bytes | None:
    if not path:
        return None
    try:
        data = Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise AccessError(f"{flag} {path!r}: cannot read it ({exc.strerror})") from None
    if b"-----BEGIN" not in data:
        raise AccessError(f"{flag} {path!r}: not a PEM file")
    return data


def access_from(pick) -> TemporalAccess:
    """Build the access from ``pick(flag_attribute, env_name)`` (the CLI's flag-then-environment lookup)."""
    cert = _read(pick("temporal_tls_cert", "SIMPLETUNER_WORKER_TEMPORAL_TLS_CERT"), "--temporal-tls-cert")
    key = _read(pick("temporal_tls_key", "SIMPLETUNER_WORKER_TEMPORAL_TLS_KEY"), "--temporal-tls-key")
    if (cert is None) != (key is None):
        raise AccessError("--temporal-tls-cert and --temporal-tls-key go together (mTLS needs both)")
    return TemporalAccess(
        address=pick("temporal_address", "SIMPLETUNER_TEMPORAL_ADDRESS"),
        ca_cert=_read(pick("temporal_tls_ca", "SIMPLETUNER_WORKER_TEMPORAL_TLS_CA"), "--temporal-tls-ca"),
        client_cert=cert, client_key=key,
        server_name=pick("temporal_tls_server_name", "SIMPLETUNER_WORKER_TEMPORAL_TLS_SERVER_NAME"),
        api_key=pick("temporal_api_key", "SIMPLETUNER_WORKER_TEMPORAL_API_KEY"))


def tls_option(access: TemporalAccess, answer_says_tls: bool) -> bool | TLSConfig:
    """TLS with this host's material when any is configured; system roots when only the answer asks."""
    if access.tls_configured:
        return TLSConfig(server_root_ca_cert=access.ca_cert, client_cert=access.client_cert,
                         client_private_key=access.client_key, domain=access.server_name)
    return bool(answer_says_tls) or bool(access.api_key)  # API keys are only ever sent over TLS


async def connect_temporal(temporal: Mapping[str, Any], access: TemporalAccess, identity: str) -> Client:
    address = access.address or temporal.get("address")
    if not address:
        raise ValueError("the register answer names no Temporal address; pass --temporal-address")
    namespace = temporal.get("namespace")
    if not namespace:
        raise ValueError("the register answer names no Temporal namespace")
    tls = tls_option(access, bool(temporal.get("tls")))
    log.info("connecting to Temporal at %s (namespace %s, tls %s, api key %s)", address, namespace, bool(tls),
             "yes" if access.api_key else "no")
    return await Client.connect(address, namespace=namespace, tls=tls, api_key=access.api_key, identity=identity,
                                data_converter=pydantic_data_converter, interceptors=[CorrelationInterceptor()])
