"""A real forward proxy (the ``proxy.py`` package) on 127.0.0.1 for tests of outbound HTTP.

The proxy runs as its own process with the ``ProxyOnlyNames`` plugin: host names ending in
``.proxy-only.test`` resolve to 127.0.0.1 *inside the proxy only*. Nothing else on the machine can
resolve them, so a request that reaches a server under such a name went through the proxy. The
proxy's log (``log_text()``) shows each request it handled (``CONNECT host:port`` for HTTPS).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from proxy.http.proxy import HttpProxyBasePlugin

from tests.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
PROXY_ONLY_SUFFIX = ".proxy-only.test"


class ProxyOnlyNames(HttpProxyBasePlugin):
    """Resolves ``*.proxy-only.test`` to 127.0.0.1; other names through the system resolver."""

    def resolve_dns(self, host: str, port: int):
        if host.endswith(PROXY_ONLY_SUFFIX):
            return "127.0.0.1", None
        return None, None


def proxy_only_name(label: str) -> str:
    return label + PROXY_ONLY_SUFFIX


class ForwardProxy:
    """``python -m proxy`` on 127.0.0.1:<port>; ``url`` is what HTTP(S)_PROXY takes."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log_path = self.directory / "proxy.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> "ForwardProxy":
        argv = [sys.executable, "-m", "proxy", "--hostname", "127.0.0.1", "--port", str(self.port),
                "--num-acceptors", "1", "--num-workers", "1", "--log-level", "INFO",
                "--log-file", str(self.log_path), "--plugins", f"{__name__}.ProxyOnlyNames"]
        with open(self.directory / "proxy.out", "wb") as out:
            self.process = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self._accepting():
            if self.process.poll() is not None:
                raise RuntimeError(f"proxy.py exited with {self.process.returncode}: {self.output()}")
            if time.monotonic() >= deadline:
                self.stop()
                raise RuntimeError(f"proxy.py did not listen on {self.url} within {timeout}s: {self.output()}")
            time.sleep(0.05)
        return self

    def _accepting(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def output(self) -> str:
        try:
            return (self.directory / "proxy.out").read_text(errors="replace")[-3000:] + self.log_text()[-3000:]
        except OSError:
            return self.log_text()[-3000:]

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_logged(self, needle: str, times: int = 1, timeout: float = 10.0) -> str:
        """The log once it contains ``needle`` at least ``times`` times (the proxy writes a request's
        access line when its connection ends)."""
        deadline = time.monotonic() + timeout
        while (text := self.log_text()).count(needle) < times:
            if time.monotonic() >= deadline:
                raise AssertionError(f"{needle!r} not {times} time(s) in the proxy's log after {timeout}s:\n"
                                     f"{text[-3000:]}")
            time.sleep(0.05)
        return text

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)  # its own group: the acceptor processes too
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
