"""The REST API as the job commands see it: where it is, who calls, and what its answers mean.

``SIMPLETUNER_URL`` / ``--url`` (default http://127.0.0.1:8001) and ``SIMPLETUNER_TOKEN`` / ``--token``
(sent as ``Authorization: Bearer``); ``SIMPLETUNER_CA_BUNDLE``: the CA(s) trusted for an ``https://`` API
instead of the system's. Every failure becomes a ``CliError`` carrying the message to print
and the exit code: 4 when the API refused the request (its ``detail``), 5 when it cannot be reached.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx

from activities.outbound_http.tls import CaBundleError, ca_bundle_context, untrusted_certificate

DEFAULT_URL = "http://127.0.0.1:8001"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED, EXIT_REFUSED, EXIT_UNREACHABLE = 0, 1, 2, 3, 4, 5
EXIT_INTERRUPTED = 130
EXIT_FOR_STATUS = {"completed": EXIT_OK, "failed": EXIT_FAILED, "cancelled": EXIT_CANCELLED}
EXIT_CODES_HELP = """\
exit codes:
  0    done (with --wait/--follow: the job completed)
  1    the job failed
  2    usage error (bad flags or arguments)
  3    the job was cancelled (or its approval rejected or expired)
  4    the API refused the request (401/403/404/409/422...; its message is printed)
  5    the API cannot be reached or is unavailable (connection error, timeout, 5xx)
  130  interrupted (Ctrl-C)

environment: SIMPLETUNER_URL (default http://127.0.0.1:8001), SIMPLETUNER_TOKEN (an API key),
  SIMPLETUNER_CA_BUNDLE (PEM file of the CA that signed an https:// API's certificate)"""
STREAM_READ_TIMEOUT = 60.0  # the API sends a keepalive every 15 s on its streams
STREAM_RECONNECTS = 8  # a stream that was open and dropped is resumed (Last-Event-ID) this many times


class CliError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def connection_options() -> argparse.ArgumentParser:
    """The options every API command takes (a parent parser)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help=f"the API's address (default: $SIMPLETUNER_URL or {DEFAULT_URL})")
    common.add_argument("--token", help="API key (default: $SIMPLETUNER_TOKEN; prefer the variable, command "
                                        "lines are visible to other users)")
    common.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")
    return common


class ApiClient:
    def __init__(self, url: str, token: str | None, timeout: float = 30.0, ca_bundle: str | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise CliError(f"--url / SIMPLETUNER_URL must start with http:// or https://, not {url!r}", EXIT_USAGE)
        self.url = url.rstrip("/")
        token = (token or "").strip()
        if token and not (token.isascii() and token.isprintable() and " " not in token):
            raise CliError("--token / SIMPLETUNER_TOKEN is not an API key (spaces or unusual characters)", EXIT_USAGE)
        self.has_token, self._token, self._timeout, self._ca_bundle = bool(token), token, timeout, ca_bundle
        try:
            verify = ca_bundle_context(ca_bundle) if ca_bundle else True
        except CaBundleError as exc:
            raise CliError(f"SIMPLETUNER_CA_BUNDLE: {exc}", EXIT_USAGE) from None
        headers = {"Accept": "application/json", "User-Agent": "simpletuner-cli"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, verify=verify)
        except (httpx.InvalidURL, ValueError) as exc:
            raise CliError(f"invalid API URL {url!r}: {exc}", EXIT_USAGE) from None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "ApiClient":
        url = args.url or os.environ.get("SIMPLETUNER_URL") or DEFAULT_URL
        return cls(url, args.token or os.environ.get("SIMPLETUNER_TOKEN") or None,
                   ca_bundle=os.environ.get("SIMPLETUNER_CA_BUNDLE") or None)

    def copy(self) -> "ApiClient":
        """Another client for the same API and caller (one per thread)."""
        return ApiClient(self.url, self._token, self._timeout, self._ca_bundle)

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, **params: Any) -> Any:
        return self._call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._call("POST", path, json=body)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        if response.status_code >= 400:
            raise self._refused(response)
        try:
            return response.json()
        except ValueError:
            raise CliError(f"{method} {self.url}{path} answered HTTP {response.status_code} with something that "
                           "is not JSON (is --url the control plane's API?)", EXIT_UNREACHABLE) from None

    def stream(self, path: str, **params: Any) -> Iterator[tuple[str, Any]]:
        """(event, data) of a Server-Sent Events stream. A stream that dropped after it opened is resumed
        from the last event id; one that cannot be opened raises at once."""
        last_id: str | None = None
        drops = 0
        opened = False
        while True:
            headers = {"Accept": "text/event-stream"}
            if last_id is not None:
                headers["Last-Event-ID"] = last_id
            try:
                with self._http.stream("GET", path, params={k: v for k, v in params.items() if v is not None},
                                       headers=headers, timeout=httpx.Timeout(30.0, read=STREAM_READ_TIMEOUT)) as answer:
                    if answer.status_code >= 400:
                        answer.read()
                        raise self._refused(answer)
                    opened = True
                    for event_id, event, data in parse_sse(answer.iter_lines()):
                        drops = 0
                        last_id = event_id or last_id
                        yield event, data
            except httpx.TransportError as exc:
                if not opened or drops >= STREAM_RECONNECTS:
                    raise self._unreachable(exc) from None
            drops += 1
            time.sleep(min(2.0 ** drops / 4, 5.0))

    def _unreachable(self, exc: Exception) -> CliError:
        why = untrusted_certificate(exc)
        if why is not None:
            return CliError(f"cannot reach the API at {self.url}: its TLS certificate is not trusted ({why}); set "
                            "SIMPLETUNER_CA_BUNDLE to the PEM file of the CA that signed it", EXIT_UNREACHABLE)
        reason = str(exc) or type(exc).__name__
        return CliError(f"cannot reach the API at {self.url}: {reason}", EXIT_UNREACHABLE)

    def _refused(self, response: httpx.Response) -> CliError:
        detail = error_detail(response)
        if response.status_code >= 500:
            return CliError(f"the API is unavailable (HTTP {response.status_code}): {detail}", EXIT_UNREACHABLE)
        hint = "; set SIMPLETUNER_TOKEN or pass --token" if response.status_code == 401 and not self.has_token else ""
        return CliError(f"{detail} (HTTP {response.status_code}){hint}", EXIT_REFUSED)


def fetch_pages(api: ApiClient, path: str, key: str, params: dict[str, Any], every: bool) -> dict[str, Any]:
    """One page, or with ``every`` all of them (following ``next_cursor``) as one document."""
    page = api.get(path, **params)
    while every and page.get("next_cursor"):
        more = api.get(path, **{**params, "cursor": page["next_cursor"]})
        page = {**more, key: page[key] + more[key]}
    return page


def error_detail(response: httpx.Response) -> str:
    """The API's ``{"detail": ...}`` as one line (a string, or FastAPI's list of errors)."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list):
        detail = "; ".join(f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}" if isinstance(d, dict)
                           else str(d) for d in detail)
    elif detail is not None and not isinstance(detail, str):
        detail = json.dumps(detail)
    text = detail or response.text.strip()[:200] or response.reason_phrase
    return " ".join(str(text).split())


def parse_sse(lines: Iterable[str]) -> Iterator[tuple[str | None, str, Any]]:
    """(id, event, data) per event of an SSE text stream; comments (keepalives) are skipped."""
    event_id, event, data = None, "message", []
    for line in lines:
        line = line.rstrip("\r")
        if not line:
            if data:
                text = "\n".join(data)
                try:
                    payload = json.loads(text)
                except ValueError:
                    payload = text
                yield event_id, event, payload
            event_id, event, data = None, "message", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "id":
            event_id = value
        elif field == "event":
            event = value
        elif field == "data":
            data.append(value)


def command(handler: Callable[[ApiClient, argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Run ``handler(api, args)``: an API error is one line on stderr and its exit code, never a traceback;
    Ctrl-C exits 130 quietly; a closed stdout (``| head``) ends the command quietly."""
    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            api = ApiClient.from_args(args)
            try:
                return handler(api, args)
            finally:
                api.close()
        except CliError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return exc.code
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return EXIT_OK
    return run
