"""A real AWS wire-protocol endpoint on 127.0.0.1 for tests: moto in server mode (Secrets Manager and
the rest of moto's services), reached with boto3 through ``endpoint_url``.

One server per test process (``shared()``), started on first use, in a daemon thread; tests make
their state independent with ``reset()`` (moto's ``/moto-api/reset``). moto accepts any credentials:
``CREDENTIALS`` are the dummy ones the tests hand to clients and to the code under test.
"""

from __future__ import annotations

import logging
import threading
import urllib.request
from typing import Any

from moto.server import ThreadedMotoServer

from tests.ports import free_port

REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


class AwsServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.running = False

    def start(self) -> "AwsServer":
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per request otherwise
        self._server.start()  # returns once the socket listens
        self.running = True
        return self

    def stop(self) -> None:
        if self.running:
            self._server.stop()
            self.running = False

    def reset(self) -> None:
        """Forget every secret (and every other resource) of every account and region."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()

    def client(self, service: str = "secretsmanager") -> Any:
        import boto3

        return boto3.client(service, region_name=REGION, endpoint_url=self.url,
                            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"])


_shared: AwsServer | None = None
_lock = threading.Lock()


def shared() -> AwsServer:
    """The test process's server, started on first use (a session-wide fixture in all but name)."""
    global _shared
    with _lock:
        if _shared is None:
            _shared = AwsServer().start()
        return _shared
