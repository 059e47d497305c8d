"""A stand-in for HashiCorp Vault on 127.0.0.1: a real HTTP server speaking the part of Vault's
documented HTTP API that the project uses, for tests (Vault itself is neither in Debian nor on PyPI).

- ``GET /v1/sys/health``: no token needed; ``initialized``, ``sealed``, ``standby``, ``version``.
- ``GET /v1/auth/token/lookup-self``: the calling token's ``data`` (``id``, ``policies``, ``ttl``).
- KV version 2 under each mount (default ``secret``):
  ``GET /v1/<mount>/data/<path>[?version=N]`` answers
  ``{"data": {"data": {...}, "metadata": {"created_time", "custom_metadata", "deletion_time",
  "destroyed", "version"}}}``; ``POST``/``PUT`` with ``{"data": {...}, "options": {"cas": N}}`` writes
  a new version and answers its metadata; ``DELETE`` soft-deletes the latest version (204).
- Every route but health wants ``X-Vault-Token``; a missing or unknown token, or one whose policy does
  not cover the API path (``fnmatch`` globs over ``<mount>/data/<path>``), gets 403
  ``{"errors": ["permission denied"]}``. A path with no live version gets 404 ``{"errors": []}``; a
  deleted latest version gets 404 with the metadata (``deletion_time`` set), as Vault does.

``requests`` records ``(method, path, token)`` of every call so tests can count them.
"""

from __future__ import annotations

import fnmatch
import json
import secrets
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.ports import free_port

VERSION = "1.15.0"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _Store:
    """mount -> path -> list of versions (each {"data": ..., "metadata": ...})."""

    def __init__(self, mounts: tuple[str, ...]) -> None:
        self.mounts: dict[str, dict[str, list[dict[str, Any]]]] = {m: {} for m in mounts}
        self.lock = threading.Lock()


class VaultKvServer:
    def __init__(self, mounts: tuple[str, ...] = ("secret",), policies: dict[str, list[str]] | None = None) -> None:
        self.root_token = "hvs." + secrets.token_urlsafe(18)
        # token -> API path globs it may use (under /v1/, e.g. "secret/data/simpletuner/*")
        self.policies: dict[str, list[str]] = {self.root_token: ["*"], **(policies or {})}
        self.store = _Store(mounts)
        self.requests: list[tuple[str, str, str | None]] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def add_token(self, globs: list[str]) -> str:
        token = "hvs." + secrets.token_urlsafe(18)
        self.policies[token] = list(globs)
        return token

    def start(self) -> "VaultKvServer":
        server = self

        class Handler(_Handler):
            vault = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="vault-kv-stand-in", daemon=True)
        self._thread.start()  # the socket already listens: bound in the constructor above
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def reads(self, path_suffix: str) -> int:
        """How many GETs of a KV path ending in ``path_suffix`` were made."""
        return sum(1 for method, path, _ in self.requests if method == "GET" and path.endswith(path_suffix))

    def __enter__(self) -> "VaultKvServer":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    vault: VaultKvServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read ``requests`` instead
        return None

    # ---- plumbing

    def _send(self, status: int, body: dict[str, Any] | None = None) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _body(self) -> dict[str, Any] | None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            data = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            return None
        return data if isinstance(data, dict) else None

    def _allowed(self, token: str | None, api_path: str) -> bool:
        globs = self.vault.policies.get(token or "")
        return globs is not None and any(fnmatch.fnmatchcase(api_path, g) for g in globs)

    def _route(self, method: str) -> None:
        url = urlsplit(self.path)
        token = self.headers.get("X-Vault-Token")
        self.vault.requests.append((method, url.path, token))
        if not url.path.startswith("/v1/"):
            return self._send(404, {"errors": []})
        api_path = url.path[len("/v1/"):].strip("/")
        if api_path == "sys/health" and method in ("GET", "HEAD"):
            return self._send(200, {"initialized": True, "sealed": False, "standby": False,
                                    "performance_standby": False, "replication_performance_mode": "disabled",
                                    "replication_dr_mode": "disabled", "server_time_utc": int(datetime.now().timestamp()),
                                    "version": VERSION, "cluster_name": "stand-in", "cluster_id": "stand-in"})
        if token not in self.vault.policies:
            return self._send(403, {"errors": ["permission denied"]})
        if api_path == "auth/token/lookup-self" and method == "GET":
            return self._send(200, {"data": {"id": token, "policies": ["default"], "ttl": 0, "renewable": False,
                                             "display_name": "token", "type": "service"}})
        mount, _, rest = api_path.partition("/")
        if mount not in self.vault.store.mounts or not rest.startswith("data/"):
            return self._send(404, {"errors": [f'no handler for route "{api_path}". route entry not found.']})
        if not self._allowed(token, api_path):
            return self._send(403, {"errors": ["permission denied"]})
        path = rest[len("data/"):]
        if not path:
            return self._send(405, {"errors": []})
        handler = {"GET": self._read, "POST": self._write, "PUT": self._write, "DELETE": self._delete}.get(method)
        if handler is None:
            return self._send(405, {"errors": []})
        with self.vault.store.lock:
            handler(self.vault.store.mounts[mount], path, parse_qs(url.query))

    # ---- KV v2

    def _read(self, kv: dict[str, list[dict[str, Any]]], path: str, query: dict[str, list[str]]) -> None:
        versions = kv.get(path)
        if not versions:
            return self._send(404, {"errors": []})
        wanted = query.get("version", ["0"])[0]
        try:
            number = int(wanted) or len(versions)
        except ValueError:
            return self._send(400, {"errors": ["invalid version"]})
        if not 1 <= number <= len(versions):
            return self._send(404, {"errors": []})
        version = versions[number - 1]
        envelope = {"request_id": secrets.token_hex(8), "lease_id": "", "renewable": False, "lease_duration": 0,
                    "wrap_info": None, "warnings": None, "auth": None}
        if version["metadata"]["deletion_time"]:
            return self._send(404, {**envelope, "data": {"data": None, "metadata": dict(version["metadata"])}})
        self._send(200, {**envelope, "data": {"data": dict(version["data"]), "metadata": dict(version["metadata"])}})

    def _write(self, kv: dict[str, list[dict[str, Any]]], path: str, _: dict[str, list[str]]) -> None:
        body = self._body()
        if body is None or not isinstance(body.get("data"), dict):
            return self._send(400, {"errors": ["no data provided"]})
        options = body.get("options") or {}
        if not isinstance(options, dict):
            return self._send(400, {"errors": ["options must be an object"]})
        versions = kv.setdefault(path, [])
        cas = options.get("cas")
        if cas is not None and cas != len(versions):
            return self._send(400, {"errors": ["check-and-set parameter did not match the current version"]})
        metadata = {"created_time": _now(), "custom_metadata": None, "deletion_time": "", "destroyed": False,
                    "version": len(versions) + 1}
        versions.append({"data": dict(body["data"]), "metadata": metadata})
        self._send(200, {"request_id": secrets.token_hex(8), "data": dict(metadata)})

    def _delete(self, kv: dict[str, list[dict[str, Any]]], path: str, _: dict[str, list[str]]) -> None:
        versions = kv.get(path)
        if versions:
            versions[-1]["metadata"]["deletion_time"] = _now()
        self._send(204)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._route("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._route("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._route("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._route("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._route("DELETE")
