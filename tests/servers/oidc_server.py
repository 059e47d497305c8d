"""A real OpenID Provider (panva ``oidc-provider`` 9.x under node) for integration tests.

``OidcProviderServer`` runs ``tests/servers/oidc/server.mjs`` on 127.0.0.1:<random port> with the
given clients and users, reads ``{"issuer": ...}`` from its first stdout line (with a deadline)
and sends stderr to a log file. PKCE is enforced by the provider.

``login_through_browser_forms`` plays the browser: it walks the provider's development login and
consent forms with one httpx client (which keeps the interaction cookies) and returns the final
redirect URL (``redirect_uri?code=...&state=...&iss=...``) without following it.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import subprocess
import time
from collections.abc import Awaitable, Generator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx

OIDC_DIR = Path(__file__).resolve().parent / "oidc"
INSTALL_SCRIPT = Path(__file__).resolve().parent / "install_node.sh"


class OidcServerError(RuntimeError):
    pass


def ensure_installed() -> None:
    """Run install_node.sh (npm ci) when node_modules/oidc-provider is missing."""
    if shutil.which("node") is None:
        raise OidcServerError("node is not installed")
    if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        subprocess.run(["bash", str(INSTALL_SCRIPT)], check=True, timeout=300)


class OidcProviderServer:
    """``node server.mjs``; ``issuer`` is set once ``start()`` returns."""

    def __init__(self, log_dir: Path, users: dict[str, dict[str, Any]],
                 clients: list[dict[str, Any]], start_timeout: float = 20.0) -> None:
        self.log_path = Path(log_dir) / "oidc-provider.log"
        self.users, self.clients, self.start_timeout = users, clients, start_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.issuer: str | None = None

    def start(self) -> str:
        ensure_installed()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "OIDC_USERS": json.dumps(self.users), "OIDC_CLIENTS": json.dumps(self.clients)}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(["node", "server.mjs"], cwd=OIDC_DIR, env=env,
                                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log)
        try:
            line = self._read_first_line()
            self.issuer = json.loads(line)["issuer"]
        except Exception as exc:
            self.stop()
            raise OidcServerError(f"oidc provider did not start: {exc}\n--- log ---\n{self.log_tail()}") from exc
        return self.issuer

    def _read_first_line(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + self.start_timeout
        buf = b""
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while b"\n" not in buf:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no issuer line within {self.start_timeout}s")
                if sel.select(remaining):
                    chunk = os.read(self.proc.stdout.fileno(), 4096)
                    if not chunk:
                        raise OidcServerError(f"node exited with rc={self.proc.wait(5)} before printing the issuer")
                    buf += chunk
        return buf.split(b"\n", 1)[0].decode()

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        if proc.stdout is not None:
            proc.stdout.close()
        return proc.returncode

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError as exc:
            return f"<cannot read {self.log_path}: {exc}>"

    def __enter__(self) -> OidcProviderServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


_FORM_ACTION = re.compile(r'<form[^>]*\baction="([^"]+)"', re.I)
_PROMPT = re.compile(r'name="prompt"\s+value="([a-z]+)"', re.I)


def _walk(authorization_url: str, username: str, password: str,
          redirect_uri: str) -> Generator[tuple[str, str, dict | None], httpx.Response, str]:
    """Yields (method, url, form) requests, receives their responses, returns the final redirect URL."""
    method, url, form = "GET", authorization_url, None
    for _ in range(20):
        resp = yield method, url, form
        if resp.is_redirect:
            location = urljoin(str(resp.url), resp.headers["location"])
            if location.startswith(redirect_uri):
                return location
            method, url, form = "GET", location, None
        elif resp.status_code == 200:
            prompt = _PROMPT.search(resp.text)
            if prompt is None:
                raise OidcServerError(f"unexpected page at {resp.url}: {resp.text[:500]}")
            action = _FORM_ACTION.search(resp.text)
            url = urljoin(str(resp.url), action.group(1).replace("&amp;", "&")) if action else str(resp.url)
            form = {"prompt": "login", "login": username, "password": password} \
                if prompt.group(1) == "login" else {"prompt": prompt.group(1)}
            method = "POST"
        else:
            raise OidcServerError(f"HTTP {resp.status_code} from {resp.url}: {resp.text[:500]}")
    raise OidcServerError("too many steps in the login flow")


def login_through_browser_forms(client: httpx.Client | httpx.AsyncClient, authorization_url: str,
                                username: str, redirect_uri: str,
                                password: str = "any-password") -> str | Awaitable[str]:
    """Walk the provider's login + consent forms as ``username``; return the redirect URL to the client.

    With an ``httpx.Client`` this returns the URL; with an ``httpx.AsyncClient`` it returns an
    awaitable (``await login_through_browser_forms(async_client, ...)``). Use a fresh client per
    login: the provider's session cookie would otherwise log the previous user in again.
    """
    steps = _walk(authorization_url, username, password, redirect_uri)
    if isinstance(client, httpx.AsyncClient):
        async def run() -> str:
            request = next(steps)
            try:
                while True:
                    method, url, form = request
                    request = steps.send(await client.request(method, url, data=form, follow_redirects=False))
            except StopIteration as done:
                return done.value
        return run()
    request = next(steps)
    try:
        while True:
            method, url, form = request
            request = steps.send(client.request(method, url, data=form, follow_redirects=False))
    except StopIteration as done:
        return done.value
