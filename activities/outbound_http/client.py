"""The one place outbound ``httpx`` clients are made (a test checks that ``api/`` and ``activities/``
make none elsewhere).

Each client: proxies from ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``NO_PROXY`` (httpx reads them), the
certificates of ``outbound_http.ca_bundle`` as the trusted CAs (an ``ssl.SSLContext``, so they apply
through a proxy's tunnel too), no verification only when acknowledged (and then a warning each time a
client is made), ``outbound_http.timeout_seconds``, and the correlation id in effect as
``X-Correlation-ID`` on every request.
"""

from __future__ import annotations

import logging
import ssl
from typing import Any

import httpx

from activities.observability.correlation import HEADER, get_correlation_id
from activities.outbound_http.settings import OutboundHttpSettings
from activities.outbound_http.tls import ca_bundle_context

log = logging.getLogger(__name__)

UNVERIFIED_WARNING = ("TLS CERTIFICATE VERIFICATION IS OFF for outbound HTTPS (SIMPLETUNER_SSL_VERIFY=false, "
                      "acknowledged): these calls can be intercepted; use SIMPLETUNER_CA_BUNDLE instead")
_FIXED = ("verify", "trust_env")  # what the settings decide, never a caller


def _http(settings: Any) -> OutboundHttpSettings:
    """The block itself, or the ``outbound_http`` block of a ``Settings``."""
    http = getattr(settings, "outbound_http", settings)
    if not isinstance(http, OutboundHttpSettings):
        raise TypeError(f"expected Settings or OutboundHttpSettings, got {type(settings).__name__}")
    return http


def verify_for(settings: Any) -> ssl.SSLContext | bool:
    """What httpx's ``verify`` gets: the CA bundle's context, ``True`` (the default CAs) or ``False``."""
    http = _http(settings)
    if not http.ssl_verify:
        return False
    return ca_bundle_context(http.ca_bundle) if http.ca_bundle else True


def warn_if_unverified(settings: Any) -> bool:
    """Logs the warning when verification is off; True then."""
    if _http(settings).ssl_verify:
        return False
    log.warning(UNVERIFIED_WARNING)
    return True


def _set_correlation_id(request: httpx.Request) -> None:
    if HEADER not in request.headers:
        request.headers[HEADER] = get_correlation_id()


async def _set_correlation_id_async(request: httpx.Request) -> None:
    _set_correlation_id(request)


def _options(settings: Any, kw: dict[str, Any], hook: Any) -> dict[str, Any]:
    fixed = [name for name in _FIXED if name in kw]
    if fixed:
        raise TypeError(f"{', '.join(fixed)}: decided by the outbound_http settings, not by the caller")
    http = _http(settings)
    warn_if_unverified(http)
    hooks = {key: list(value) for key, value in (kw.pop("event_hooks", None) or {}).items()}
    hooks["request"] = [hook, *hooks.get("request", [])]
    return {"timeout": httpx.Timeout(http.timeout_seconds), **kw, "verify": verify_for(http), "trust_env": True,
            "event_hooks": hooks}


def get_async_client(settings: Any, **kw: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for outbound calls; ``settings`` is a ``Settings`` or its
    ``outbound_http`` block; ``kw`` go to httpx (``base_url``, ``headers``, a ``timeout`` of its own,
    ``transport`` in tests), except ``verify`` and ``trust_env``."""
    return httpx.AsyncClient(**_options(settings, kw, _set_correlation_id_async))


def get_sync_client(settings: Any, **kw: Any) -> httpx.Client:
    """The blocking counterpart of ``get_async_client``."""
    return httpx.Client(**_options(settings, kw, _set_correlation_id))
