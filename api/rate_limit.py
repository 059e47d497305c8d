"""Per-address rate limits as a pure ASGI middleware, outside everything else the API does.

For each HTTP request not on an excluded path: the client address (``X-Forwarded-For`` only from a
trusted proxy, ``api/network.py``), the rule that counts it (``activities/ratelimit``), one count.
Allowed requests go on and their answer carries ``X-RateLimit-Limit``, ``-Remaining`` and ``-Reset``
(unix time at which one more request fits); refused ones get 429 ``{"detail": ...}`` with the same
headers and ``Retry-After`` and are audited. If the counters cannot be reached the answer is 503.
The S3-compatible storage endpoint's refusals are S3's ``SlowDown`` (503, XML), which its clients
retry with back-off; requests signed with a running job's upload credential count against their own,
larger rule (``storage_jobs``).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import secrets
from collections.abc import Callable

from anyio import to_thread
from fastapi import FastAPI
from starlette.datastructures import Headers

from sqlalchemy.exc import SQLAlchemyError

from activities.ratelimit import violations
from activities.ratelimit.defaults import is_excluded
from activities.ratelimit.limiter import RateLimiter, RateLimitUnavailable, build_limiter
from activities.ratelimit.violations import AuditThrottle, Violation
from activities.settings import NetworkSettings, Settings
from activities.ratelimit.rules import Rule
from activities.storage import xml as s3_xml
from activities.storage.credentials import JOB_KEY_PREFIX, is_active_job_key
from activities.storage.sigv4 import access_key_of
from api.body_limit import STORAGE_PATH
from api.network import resolve_client_ip

log = logging.getLogger(__name__)
STORAGE_RULE, STORAGE_JOBS_RULE = "storage", "storage_jobs"
UNKNOWN_CLIENT = "unknown"  # no peer address (e.g. a Unix socket): all such callers share one count


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


async def _answer(send, status: int, detail: str, headers: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


async def _answer_s3(send, detail: str, headers: list[tuple[bytes, bytes]]) -> None:
    body = s3_xml.error("SlowDown", f"Please reduce your request rate: {detail}", "", secrets.token_hex(8).upper())
    await send({"type": "http.response.start", "status": 503, "headers": [
        (b"content-type", b"application/xml"), (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


class RateLimitMiddleware:
    def __init__(self, app, limiter: RateLimiter, network: NetworkSettings) -> None:
        self.app, self.limiter, self.network = app, limiter, network
        self.audit_throttle = AuditThrottle()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or is_excluded(scope["path"]):
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        peer = scope["client"][0] if scope.get("client") else None
        client = resolve_client_ip(peer, headers, self.network) or UNKNOWN_CLIENT
        if self.limiter.bypass_loopback and _is_loopback(client):
            return await self.app(scope, receive, send)
        rule = self.limiter.rules.match(scope["path"], scope["method"])
        if rule.name == STORAGE_RULE:
            rule = await self._storage_rule(scope, headers, rule)
        try:
            decision = await self.limiter.hit(rule, client)
        except RateLimitUnavailable as exc:
            return await _answer(send, 503, str(exc), [])
        limit_headers = decision.headers()
        if not decision.allowed:
            await self._refused(scope, Violation(
                ip=client, path=scope["path"], method=scope["method"], user_agent=headers.get("user-agent"),
                rule=rule.name, limit=rule.calls, period=rule.period, retry_after=decision.retry_seconds,
                at=self.limiter.clock()))
            detail = (f"too many requests from this address: at most {rule.calls} per {rule.period:g} s here; "
                      f"retry in {decision.retry_seconds} s")
            if STORAGE_PATH.match(scope["path"]):  # S3 clients understand SlowDown (and back off), not JSON
                return await _answer_s3(send, detail, limit_headers)
            return await _answer(send, 429, detail, limit_headers)

        async def send_with_limits(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *limit_headers]}
            await send(message)

        await self.app(scope, receive, send_with_limits)

    async def _storage_rule(self, scope, headers: Headers, rule: Rule) -> Rule:
        """A running job's upload credential counts against the generous ``storage_jobs`` rule
        (``activities/ratelimit/defaults.py``); everything else against ``storage``."""
        key = access_key_of(headers.get("authorization"), scope.get("query_string", b"").decode("latin-1"))
        generous = self.limiter.rules.named(STORAGE_JOBS_RULE)
        core = getattr(scope["app"].state, "core", None) if "app" in scope else None
        if key is None or generous is None or core is None or not key.startswith(JOB_KEY_PREFIX):
            return rule

        def active() -> bool:
            with core.db.read_session() as session:
                return is_active_job_key(session, key)
        try:
            return generous if await to_thread.run_sync(active) else rule
        except SQLAlchemyError as exc:
            log.warning("cannot look up a storage credential for its rate limit: %s", exc.__class__.__name__)
            return rule

    async def _refused(self, scope, violation: Violation) -> None:
        violations.on_violation(violation)
        core = getattr(scope["app"].state, "core", None) if "app" in scope else None
        if core is None or not self.audit_throttle.should_record(violation):
            return
        try:
            await to_thread.run_sync(violations.record, core.db.session, violation)
        except Exception as exc:  # the refusal stands whether or not its audit entry could be written
            log.warning("could not audit a rate-limit violation from %s: %s", violation.ip, exc)


def install(app: FastAPI, settings: Settings) -> Callable[[str], bool]:
    """Adds the middleware (after the ``add_middleware`` of everything a refused request must not reach:
    the later ones wrap it) and keeps the limiter on ``app.state.rate_limiter``. Returns
    whether a route path is limited, for the OpenAPI document. Raises ``RedisUnreachable`` (a
    ``ConfigFileError``) when the configured Redis does not answer."""
    limiter = build_limiter(settings)
    app.state.rate_limiter = limiter
    if limiter is None:
        return lambda _path: False
    app.add_middleware(RateLimitMiddleware, limiter=limiter, network=settings.network)
    return lambda path: not is_excluded(path)


async def tracked_clients(app: FastAPI) -> int:
    """Client addresses with requests counted in a current window (0 when rate limiting is off)."""
    limiter: RateLimiter | None = getattr(app.state, "rate_limiter", None)
    return 0 if limiter is None else await limiter.tracked_clients()
