"""A small Server-Sent Events reader for the e2e tests (runs in a thread, events into a queue).

Built on ``http.client`` so ``close()`` can shut the socket down: that wakes the blocked read at
once and the server sees the disconnect (an open stream would otherwise hold up the API's
graceful shutdown at teardown).
"""

from __future__ import annotations

import http.client
import json
import queue
import socket
import threading
from typing import Any
from urllib.parse import urlsplit


class SSEReader(threading.Thread):
    """Reads ``GET path`` as an event stream; ``events`` gets ``{"id", "event", "data", "json"}``
    dicts (``json`` is the parsed data or None). ``status`` is the HTTP status once headers arrived."""

    def __init__(self, base_url: str, path: str, headers: dict[str, str] | None = None,
                 timeout: float = 60.0) -> None:
        super().__init__(name=f"sse {path}", daemon=True)
        url = urlsplit(base_url)
        self.path, self.headers = path, {"Accept": "text/event-stream", **(headers or {})}
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.status: int | None = None
        self.error: BaseException | None = None
        self.received: list[dict[str, Any]] = []
        self._closed = threading.Event()
        self._conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 80, timeout=timeout)

    def run(self) -> None:
        try:
            self._conn.request("GET", self.path, headers=self.headers)
            response = self._conn.getresponse()
            self.status = response.status
            event: dict[str, Any] = {}
            while not self._closed.is_set():
                raw = response.readline()
                if not raw:
                    return  # the server ended the stream
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if line == "":
                    if "data" in event:
                        try:
                            event["json"] = json.loads(event["data"])
                        except ValueError:
                            event["json"] = None
                        self.events.put(event)
                    event = {}
                elif not line.startswith(":"):
                    field, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if field == "data":
                        event["data"] = f"{event['data']}\n{value}" if "data" in event else value
                    else:
                        event[field] = value
        except BaseException as exc:  # noqa: BLE001 - reported to the test through .error
            if not self._closed.is_set():
                self.error = exc

    def drain(self) -> list[dict[str, Any]]:
        """Move everything received so far into ``received`` and return it."""
        while True:
            try:
                self.received.append(self.events.get_nowait())
            except queue.Empty:
                return self.received

    def close(self) -> None:
        self._closed.set()
        sock = self._conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._conn.close()
        self.join(5)
