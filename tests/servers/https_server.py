"""A small HTTP or HTTPS server on 127.0.0.1 for tests of outbound clients, in a background thread.

With a certificate and key (e.g. from ``tests.servers.tls_proxy.make_pki``: a private CA nobody
trusts by default) it speaks TLS. Every GET is answered ``{"path": ..., "ok": true}`` and recorded in
``requests`` (path and headers); ``refused`` counts TLS handshakes that failed (a client that did not
trust the certificate). POSTs are recorded too (with their body) and answered with ``status`` (default
200) and ``{"detail": detail}``: e.g. 401 to play an API that refuses a worker token.
"""

from __future__ import annotations

import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.owner.requests.append({"method": "GET", "path": self.path, "headers": dict(self.headers.items())})
        self._answer(200, {"path": self.path, "ok": True})

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        owner = self.server.owner
        owner.requests.append({"method": "POST", "path": self.path, "headers": dict(self.headers.items()),
                               "body": body})
        self._answer(owner.status, {"detail": owner.detail})

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: "RecordingServer", context: ssl.SSLContext | None) -> None:
        self.owner, self.context = owner, context
        super().__init__(("127.0.0.1", 0), _Handler)

    def get_request(self):
        sock, address = super().get_request()
        if self.context is None:
            return sock, address
        # the handshake happens in the request's own thread (first read), never in the accept loop
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def handle_error(self, request, client_address) -> None:
        self.owner.refused += 1


class RecordingServer:
    def __init__(self, cert: Path | None = None, key: Path | None = None) -> None:
        context = None
        if cert is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
        self.tls = context is not None
        self.requests: list[dict[str, Any]] = []
        self.refused = 0
        self.status, self.detail = 200, "ok"  # the answer to POSTs
        self._server = _Server(self, context)
        self._thread = threading.Thread(target=self._server.serve_forever, name="recording-server", daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, host: str = "127.0.0.1") -> str:
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def start(self) -> "RecordingServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def __enter__(self) -> "RecordingServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
