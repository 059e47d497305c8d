"""Async REST client for the agent side of the control-plane API (see PROTOCOL.md).

Every call sends ``X-Worker-Token``. Failures become typed errors so callers can decide:
``InvalidToken`` (401: stop), ``Conflict`` (409/403: the job is not ours), ``Gone`` (410: the job no
longer needs running), ``NotFound`` (404),
``OrchestratorUnavailable`` (connection errors, timeouts, 5xx: retry later; ``UntrustedCertificate``
when the API's TLS certificate is not trusted, which registration treats as fatal) and
``OrchestratorError`` for any other unexpected answer. The API's certificate is checked against the
system's CAs, or only those of ``--ca-bundle`` (``api_verify``).

The client may be given several API replicas (``--orchestrator-url A,B``). It talks to one at a time
and moves to the next when the current one cannot be reached or answers 502/503/504: a request that
never connected is sent to the next replica at once; one that may have reached the failed replica is
reported ``OrchestratorUnavailable`` as before and the caller's retry goes to the next replica (every
agent request is safe to repeat).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from activities.observability import correlation
from activities.outbound_http.tls import ca_bundle_context, untrusted_certificate

UPLOAD_CHUNK = 1024 * 1024


class OrchestratorError(Exception):
    """An unexpected answer from the API."""

    def __init__(self, message: str, status_code: int | None = None, detail: str | None = None):
        super().__init__(message)
        self.status_code = status_code
        self.detail = detail if detail is not None else message


class InvalidToken(OrchestratorError):
    """401: the worker token is wrong or was rotated."""


class Conflict(OrchestratorError):
    """409 (or 403): the job is finished, belongs to another agent or pool, or this agent is draining."""


class Gone(OrchestratorError):
    """410: the job is finished or its dispatch closed: nothing to run."""


class NotFound(OrchestratorError):
    """404: unknown job (or agent)."""


class OrchestratorUnavailable(OrchestratorError):
    """The API could not be reached or answered 5xx; worth retrying."""


class UntrustedCertificate(OrchestratorUnavailable):
    """The API's TLS certificate is not signed by a CA this agent trusts."""


def api_verify(ssl_verify: bool, ca_bundle: str | None) -> ssl.SSLContext | bool:
    """httpx's ``verify`` for the API: only the bundle's CAs, the system's, or (development) none."""
    if not ssl_verify:
        return False
    return ca_bundle_context(ca_bundle) if ca_bundle else True


def _connect_failure(method: str, path: str, url: str, exc: httpx.ConnectError) -> OrchestratorUnavailable:
    why = untrusted_certificate(exc)
    if why is None:
        return OrchestratorUnavailable(f"{method} {path}: {type(exc).__name__}: {exc}")
    return UntrustedCertificate(f"{method} {path}: the API at {url} presented a TLS certificate this agent does not "
                                f"trust ({why}); give the CA that signed it with --ca-bundle "
                                "(or SIMPLETUNER_CA_BUNDLE)")


def split_urls(text: str) -> list[str]:
    """``http://a:8001,http://b:8001`` -> each replica's base URL (no trailing slash)."""
    urls = [part.strip().rstrip("/") for part in text.split(",") if part.strip()]
    if not urls:
        raise ValueError("no orchestrator URL")
    return urls


def _replayable(kwargs: dict[str, Any]) -> bool:
    """A streamed body (an upload) can be sent once per call; the caller's retry streams it again."""
    return not isinstance(kwargs.get("content"), AsyncIterator)


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    return str(body)[:500]


async def _with_correlation_id(request: httpx.Request) -> None:
    """A job's claim, reports and uploads carry the job's correlation id (set while its activity runs)."""
    value = correlation.current()
    if value is not None and correlation.HEADER not in request.headers:
        request.headers[correlation.HEADER] = value


class OrchestratorClient:
    """One agent's view of the API. Create once, ``await aclose()`` at the end."""

    def __init__(self, base_url: str, token: str, *, verify: ssl.SSLContext | bool = True, timeout: float = 30.0,
                 transport: httpx.AsyncBaseTransport | None = None):
        self.base_urls = split_urls(base_url)
        self._current = 0
        self._client = httpx.AsyncClient(
            headers={"X-Worker-Token": token}, verify=verify, transport=transport,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)), event_hooks={"request": [_with_correlation_id]})

    @property
    def base_url(self) -> str:
        """The replica requests go to now."""
        return self.base_urls[self._current]

    def _next_replica(self) -> None:
        self._current = (self._current + 1) % len(self.base_urls)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        for tried in range(1, len(self.base_urls) + 1):
            try:
                response = await self._client.request(method, self.base_url + path, **kwargs)
            except httpx.ConnectError as exc:  # never reached it: the next replica, at once
                url = self.base_url
                self._next_replica()
                if tried == len(self.base_urls) or not _replayable(kwargs):
                    raise _connect_failure(method, path, url, exc) from exc
                continue
            except httpx.TransportError as exc:  # timeouts, broken connections: it may have acted on it
                self._next_replica()
                raise OrchestratorUnavailable(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
            if response.status_code in (502, 503, 504):
                self._next_replica()
            break
        code = response.status_code
        if code < 400:
            try:
                body = response.json()
            except ValueError:
                body = {}
            return body if isinstance(body, dict) else {"value": body}
        detail = _detail(response)
        message = f"{method} {path} -> {code}: {detail}"
        if code == 401:
            raise InvalidToken(message, code, detail)
        if code in (403, 409):
            raise Conflict(message, code, detail)
        if code == 410:
            raise Gone(message, code, detail)
        if code == 404:
            raise NotFound(message, code, detail)
        if code >= 500 or code in (408, 429):
            raise OrchestratorUnavailable(message, code, detail)
        raise OrchestratorError(message, code, detail)

    async def register(self, payload: dict[str, Any]) -> dict[str, Any]:
        return await self._request("POST", "/api/workers/register", json=payload)

    async def heartbeat(self, state: str, current_job_id: str | None) -> dict[str, Any]:
        return await self._request("POST", "/api/workers/heartbeat",
                                   json={"state": state, "current_job_id": current_job_id})

    async def claim(self, job_id: str, attempt: int) -> dict[str, Any]:
        """Claim an attempt; the answer holds what to run (``config``: command, args, env, ...)."""
        return await self._request("POST", f"/api/workers/job/{quote(job_id, safe='')}/claim",
                                   json={"attempt": attempt})

    async def job_status(self, job_id: str, *, status: str, attempt: int, progress: dict[str, Any] | None = None,
                         logs: list[str] | None = None, log_offset: int = 0,
                         exit_code: int | None = None) -> dict[str, Any]:
        body = {"status": status, "attempt": attempt, "progress": progress, "logs": logs or [],
                "log_offset": log_offset, "exit_code": exit_code}
        return await self._request("POST", f"/api/workers/job/{quote(job_id, safe='')}/status", json=body)

    async def upload_output(self, job_id: str, attempt: int, name: str, path: Path, sha256: str) -> dict[str, Any]:
        """PUT one output file, streamed from disk. ``name`` is its path relative to output/."""
        size = os.path.getsize(path)

        async def chunks() -> AsyncIterator[bytes]:
            with open(path, "rb") as handle:  # local disk reads are fast enough to do inline
                while chunk := handle.read(UPLOAD_CHUNK):
                    yield chunk

        url = f"/api/workers/job/{quote(job_id, safe='')}/outputs/{quote(name, safe='/')}?attempt={attempt}"
        headers = {"X-Content-SHA256": sha256, "Content-Length": str(size),
                   "Content-Type": "application/octet-stream"}
        timeout = httpx.Timeout(600.0, connect=10.0)
        return await self._request("PUT", url, content=chunks(), headers=headers, timeout=timeout)

    async def disconnect(self, reason: str) -> dict[str, Any]:
        return await self._request("POST", "/api/workers/disconnect", json={"reason": reason},
                                   timeout=httpx.Timeout(5.0))
