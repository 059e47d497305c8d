"""A cloud provider's effective settings: its config row over the process-wide settings and the
environment. Where its API is (``api_base_url``, else ``REPLICATE_BASE_URL``-style variables, else the
provider's default), which token a job uses (the submitter's own credential, else the global one), how
its outbound HTTP is made (per-provider CA bundle, proxy, timeout, verification) and how often its
trainings are polled.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlmodel import Session

from activities.db.models_providers import ProviderConfig
from activities.errors import InvalidInput, NotFound
from activities.outbound_http.client import get_async_client
from activities.outbound_http.settings import OutboundHttpSettings
from activities.outbound_http.tls import CaBundleError, ca_bundle_context
from activities.providers import registry
from activities.providers.base import Connection, ProviderRefused
from activities.secrets import credentials

TOKEN_CREDENTIAL = "api_token"
SAFETY_POLL_FACTOR = 10  # with webhooks, a poll still runs this many intervals apart


def check_networks(values: list[str]) -> list[str]:
    out = []
    for value in values:
        try:
            out.append(str(ipaddress.ip_network(value.strip(), strict=False)))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or CIDR range") from None
    return out


def check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


def check_ca_bundle(path: str) -> str:
    try:
        ca_bundle_context(path)
    except CaBundleError as exc:
        raise ValueError(str(exc)) from None
    return path


def config(session: Session, provider: str) -> ProviderConfig:
    return session.get(ProviderConfig, provider) or ProviderConfig(provider=provider)


def base_url(row: ProviderConfig, env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    provider = registry.get(row.provider)
    return (row.api_base_url or env.get(f"{row.provider.upper()}_BASE_URL") or provider.default_base_url).rstrip("/")


def outbound(row: ProviderConfig, process: OutboundHttpSettings) -> tuple[OutboundHttpSettings, dict[str, Any]]:
    """The outbound settings for this provider's calls, and extra client options (its proxy)."""
    changes: dict[str, Any] = {}
    if row.ca_bundle_path:
        changes["ca_bundle"] = row.ca_bundle_path
    if row.ssl_verify is not None:  # false was acknowledged when it was set
        changes.update(ssl_verify=row.ssl_verify, ssl_verify_acknowledged=process.ssl_verify_acknowledged
                       or row.ssl_verify is False)
    if row.http_timeout:
        changes["timeout_seconds"] = row.http_timeout
    merged = OutboundHttpSettings.model_validate({**process.model_dump(), **changes})
    return merged, ({"proxy": row.proxy_url} if row.proxy_url else {})


def http_client(row: ProviderConfig, process: OutboundHttpSettings) -> httpx.AsyncClient:
    """ProviderRefused naming the setting when the provider's outbound settings are unusable now (a CA
    bundle that was readable when it was set and is not any more): the stricter answer, with the reason."""
    try:
        http, extra = outbound(row, process)
        return get_async_client(http, **extra)
    except (ValueError, CaBundleError) as exc:
        raise ProviderRefused(f"{row.provider} outbound HTTP settings are unusable: {exc}") from None


def token(session: Session, provider: str, user_id: str | None, secrets: Any,
          env: Mapping[str, str] | None = None, cipher: Any = None) -> tuple[str, str]:
    """(token, "user" | "global"): the user's own credential, else the global secret
    ``SIMPLETUNER_<PROVIDER>_API_TOKEN``, else the provider's conventional one (``REPLICATE_API_TOKEN``),
    both through the secrets providers. Never logged."""
    if user_id is not None:
        try:
            return credentials.resolve(session, user_id, provider, TOKEN_CREDENTIAL, env=env, secrets=secrets,
                                       touch=False, cipher=cipher)
        except NotFound:
            pass
    conventional = f"{provider.upper()}_API_TOKEN"
    for name in (credentials.global_env_name(provider, TOKEN_CREDENTIAL), conventional):
        value = credentials.global_value(name, env, secrets)
        if value:
            return value, "global"
    raise ProviderRefused(f"no {provider} API token: set your own credential {provider}/{TOKEN_CREDENTIAL}, or "
                          f"the global SIMPLETUNER_{provider.upper()}_API_TOKEN (or {conventional})")


@asynccontextmanager
async def connection(row: ProviderConfig, process: OutboundHttpSettings, token: str) -> AsyncIterator[Connection]:
    """A connection to the provider for a few calls: its base URL, the token, its own HTTP client."""
    async with http_client(row, process) as client:
        yield Connection(base_url=base_url(row), token=token, client=client)


@dataclass
class Polling:
    interval_seconds: float
    webhooks: bool  # deliveries are expected: polling is the safety net


def polling(row: ProviderConfig, settings: Any) -> Polling:
    cfg = settings.background.job_status_polling
    interval = row.polling_interval_seconds or cfg.interval_seconds
    webhooks = bool(row.webhook_url) and cfg.enabled is not True
    return Polling(interval_seconds=interval * (SAFETY_POLL_FACTOR if webhooks else 1), webhooks=webhooks)


def configured(row: ProviderConfig) -> list[str]:
    """What is missing before trainings can run (empty: configured)."""
    return [name for name in ("version", "destination") if not getattr(row, name)]


def require_configured(row: ProviderConfig) -> None:
    missing = configured(row)
    if missing:
        raise InvalidInput(f"cloud provider {row.provider} is not configured: set {', '.join(missing)} with "
                           f"PUT /api/cloud/providers/{row.provider}/config")
