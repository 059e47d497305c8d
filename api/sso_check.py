"""The connection check of one sign-in provider, shared by ``POST …/external-auth/providers/{name}/test``
and the console's Test button: LDAP, a service bind and a search of the base DN; OIDC, a fresh
discovery and the signing keys. It works on disabled providers too. Provider calls use the outbound HTTP client
(``activities/outbound_http``): proxies, CA bundle and timeout from the settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import httpx

from activities.identity.external_identity import ExternalAuthError, ProviderUnavailable
from activities.identity.sso import ldap_auth, oidc_auth
from activities.identity.sso import providers as sso
from activities.outbound_http.client import get_async_client
from activities.outbound_http.settings import OutboundHttpSettings
from activities.runtime import Database

log = logging.getLogger(__name__)


@contextlib.contextmanager
def provider_errors(what: str) -> Iterator[None]:
    """Anything but an ExternalAuthError escaping a provider call is logged and reported as a 503."""
    try:
        yield
    except ExternalAuthError:
        raise
    except Exception as exc:  # noqa: BLE001 - a bug or an unforeseen library error: never a 500
        log.exception("%s failed unexpectedly", what)
        raise ProviderUnavailable(f"{what} failed ({type(exc).__name__}); see the server log") from exc


def http_client(http: OutboundHttpSettings) -> httpx.AsyncClient:
    return get_async_client(http)


async def check(db: Database, name: str, http: OutboundHttpSettings) -> tuple[str, dict[str, Any]]:
    """``(provider_type, result)``. NotFound for an unknown provider; the provider's refusal, or an
    unreadable secret, as its domain error; anything unforeseen as ProviderUnavailable."""
    def load() -> tuple[str, Any]:
        with db.read_session() as session:
            row = sso.get(session, name)
            return row.provider_type, sso.usable_config(row)

    provider_type, config = await asyncio.to_thread(load)
    with provider_errors(f"testing provider {name!r}"):
        if provider_type == "ldap":
            return provider_type, await asyncio.to_thread(ldap_auth.test_connection, config)
        async with http_client(http) as client:
            return provider_type, await oidc_auth.test_provider(config, client)
