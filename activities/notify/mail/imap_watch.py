"""Watching one IMAP folder with IDLE (RFC 2177) and handing every unseen message to a callback.

Made for a long-running Temporal activity: ``MailboxWatcher.run`` returns only by raising, calls
``on_alive`` (the activity heartbeats from it) at least every ``alive_every`` seconds while idling, and
turns every connection, TLS, protocol or timeout problem into ``MailboxError`` so the activity fails
and Temporal retries it with backoff. Delivery is at-least-once: a message is flagged ``\\Seen`` only
after ``on_message`` returned, so a crash or an exception from the callback (which propagates as is)
leaves it unseen and it is read again by the next run. ``on_alive`` is not called while ``on_message``
runs, so a handler that can take longer than the heartbeat timeout must heartbeat itself.

Why the client is subclassed: aioimaplib drops untagged ``EXISTS`` responses that arrive during
SEARCH/FETCH/STORE, and the server reports each new message only once. A message delivered just before
a SEARCH that comes back empty (dovecot searches the session's last synced view) would then wait for
the next delivery or the IDLE re-issue. The protocol
subclass flags every ``EXISTS`` it sees, in or out of IDLE, and the watcher searches again after one.
It overrides a private aioimaplib method (checked with aioimaplib 2.0.3);
``test_message_announced_during_an_empty_search_is_not_missed`` fails if that hook stops working.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aioimaplib import AioImapException, IMAP4, IMAP4ClientProtocol

from activities.notify.mail.smtp_send import client_tls_context

log = logging.getLogger(__name__)
T = TypeVar("T")
_EXISTS = re.compile(rb"^\* \d+ EXISTS")
_SETTINGS_TIMEOUT = -1.0  # _guard: use ImapSettings.timeout


@dataclass(frozen=True)
class ImapSettings:
    """The mailbox to watch. ``use_ssl`` = implicit TLS (IMAPS); ``ca_file`` is trusted besides the system CAs."""

    host: str
    port: int
    username: str
    password: str
    use_ssl: bool = False
    folder: str = "INBOX"
    timeout: float = 15.0  # per command, and for connecting
    ca_file: str | None = None

    def __repr__(self) -> str:  # keeps the password out of logs and tracebacks
        return (f"ImapSettings(host={self.host!r}, port={self.port}, username={self.username!r}, "
                f"use_ssl={self.use_ssl}, folder={self.folder!r})")


class MailboxError(Exception):
    """The mailbox cannot be watched (any more): unreachable, TLS failure, connection lost, timeout..."""


class MailboxAuthError(MailboxError):
    """The server refused the credentials."""


class _Protocol(IMAP4ClientProtocol):
    """Calls ``on_exists`` for every untagged ``EXISTS`` (aioimaplib drops those outside IDLE/SELECT)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, conn_lost_cb: Callable[[Exception | None], None],
                 on_exists: Callable[[], None]) -> None:
        super().__init__(loop, conn_lost_cb)
        self._on_exists = on_exists

    def _untagged_response(self, line: bytes) -> Any:
        if _EXISTS.match(line):
            self._on_exists()
        return super()._untagged_response(line)


class _Client(IMAP4):
    """``IMAP4`` with ``_Protocol``; TLS through ``ssl_context`` (``IMAP4_SSL`` would drop ``conn_lost_cb``)."""

    def __init__(self, settings: ImapSettings, conn_lost_cb: Callable[[Exception | None], None],
                 on_exists: Callable[[], None]) -> None:
        self._on_exists = on_exists
        ctx = client_tls_context(settings.ca_file) if settings.use_ssl else None
        super().__init__(settings.host, settings.port, timeout=settings.timeout, conn_lost_cb=conn_lost_cb,
                         ssl_context=ctx)

    def create_client(self, host: str, port: int, loop: asyncio.AbstractEventLoop | None,
                      conn_lost_cb: Callable[[Exception | None], None] | None = None,
                      ssl_context: ssl.SSLContext | None = None) -> None:
        local_loop = loop or asyncio.get_running_loop()
        self.protocol = _Protocol(local_loop, conn_lost_cb, self._on_exists)
        self._client_task = local_loop.create_task(
            local_loop.create_connection(lambda: self.protocol, host, port, ssl=ssl_context))


class MailboxWatcher:
    """Processes the unseen messages of one folder, then waits in IDLE for more; see the module doc."""

    def __init__(self, settings: ImapSettings, on_message: Callable[[bytes], Awaitable[None]],
                 on_alive: Callable[[], None] | None = None, idle_seconds: float = 300.0,
                 alive_every: float = 5.0) -> None:
        if idle_seconds <= 0 or alive_every <= 0:
            raise ValueError("idle_seconds and alive_every must be positive")
        self.settings = settings
        self.on_message = on_message
        self.on_alive = on_alive
        self.idle_seconds = idle_seconds  # RFC 2177: re-issue IDLE at least every 29 minutes
        self.alive_every = alive_every
        self._lost = self._new_mail = asyncio.Event()  # replaced by run(), bound to its loop
        self._where = f"{settings.host}:{settings.port}"

    async def run(self) -> None:
        """Runs until cancelled (then logs out) or until the mailbox fails. One run at a time per watcher.

        Raises ``MailboxAuthError`` for refused credentials, ``MailboxError`` for every other mailbox or
        connection failure, and whatever ``on_message`` raises, unchanged.
        """
        self._lost, self._new_mail = asyncio.Event(), asyncio.Event()
        client = _Client(self.settings, self._connection_lost, self._new_mail.set)
        try:
            await self._guard(client.wait_hello_from_server(), "connect")
            response = await self._guard(client.login(self.settings.username, self.settings.password), "LOGIN")
            if response.result != "OK":
                raise MailboxAuthError(f"IMAP login failed for {self.settings.username}")
            if not client.has_capability("IDLE"):
                raise MailboxError(f"IMAP server {self._where} does not support IDLE")
            response = await self._guard(client.select(_quoted(self.settings.folder)), "SELECT")
            if response.result != "OK":
                raise MailboxError(f"cannot select IMAP folder {self.settings.folder!r}: {_text(response)}")
            log.info("watching %s of %s on %s", self.settings.folder, self.settings.username, self._where)
            while True:
                await self._process_unseen(client)
                await self._idle(client)
        except asyncio.CancelledError:
            await self._logout(client)
            raise
        finally:
            self._close(client)

    def _connection_lost(self, exc: Exception | None) -> None:
        log.debug("IMAP connection to %s lost: %r", self._where, exc)
        self._lost.set()

    async def _guard(self, aw: Awaitable[T], what: str, timeout: float | None = _SETTINGS_TIMEOUT) -> T:
        """Awaits ``aw`` unless the connection drops or ``timeout`` passes (None: no limit)."""
        timeout = self.settings.timeout if timeout == _SETTINGS_TIMEOUT else timeout
        task = asyncio.ensure_future(aw)
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            await asyncio.wait({task, lost}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            if not task.done():
                task.cancel()
        if task.done() and not task.cancelled():
            try:
                return task.result()
            except (AioImapException, OSError, asyncio.TimeoutError) as exc:  # ssl errors are OSErrors
                raise MailboxError(f"IMAP {what} on {self._where} failed: {exc!r}") from exc
        if self._lost.is_set():
            raise MailboxError(f"IMAP connection to {self._where} lost during {what}")
        raise MailboxError(f"IMAP {what} on {self._where} timed out after {timeout}s")

    async def _process_unseen(self, client: _Client) -> None:
        """Handles UNSEEN messages oldest first; searches again while new ones were announced meanwhile."""
        while True:
            self._new_mail.clear()
            response = await self._guard(client.uid_search("UNSEEN", charset=None), "UID SEARCH")
            _check(response, "UID SEARCH")
            uids = sorted({int(tok) for line in response.lines[:-1] for tok in line.split() if tok.isdigit()})
            for uid in uids:
                await self._process(client, uid)
            if not uids and not self._new_mail.is_set():
                return

    async def _process(self, client: _Client, uid: int) -> None:
        # no outer timeout: aioimaplib's per-command timer fires on inactivity, so big messages can take time
        response = await self._guard(client.uid("fetch", str(uid), "(BODY.PEEK[])"), "UID FETCH", None)
        _check(response, "UID FETCH")
        raw = next((bytes(line) for line in response.lines if isinstance(line, bytearray)), None)
        if raw is None:  # expunged by another client in the meantime
            log.info("IMAP message uid %s on %s vanished before it was read", uid, self._where)
            return
        await self.on_message(raw)  # an exception leaves the message unseen: read again on the next run
        response = await self._guard(client.uid("store", str(uid), "+FLAGS.SILENT", r"(\Seen)"), "UID STORE")
        _check(response, "UID STORE")
        if self.on_alive is not None:
            self.on_alive()

    async def _idle(self, client: _Client) -> None:
        """One IDLE round: until EXISTS, the server ending IDLE, or ``idle_seconds``; then DONE."""
        loop = asyncio.get_running_loop()
        idle = await self._guard(client.idle_start(timeout=self.idle_seconds), "IDLE")
        deadline = loop.time() + self.idle_seconds
        try:
            while not (self._new_mail.is_set() or idle.done()):
                if self.on_alive is not None:
                    self.on_alive()
                remaining = deadline - loop.time()
                if remaining <= 0:
                    log.debug("re-issuing IDLE on %s after %ss", self._where, self.idle_seconds)
                    break
                waiters = [asyncio.ensure_future(self._new_mail.wait()), asyncio.ensure_future(self._lost.wait())]
                try:
                    await asyncio.wait([*waiters, idle], timeout=min(self.alive_every, remaining),
                                       return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiter in waiters:
                        waiter.cancel()
                if self._lost.is_set():
                    raise MailboxError(f"IMAP connection to {self._where} lost while idling")
            if client.has_pending_idle():
                client.idle_done()
            response = await self._guard(idle, "IDLE DONE")
            _check(response, "IDLE")
        finally:
            if not idle.done():
                idle.cancel()
            queue = client.protocol.idle_queue
            while not queue.empty():  # pushes seen through _new_mail; unread ones would pile up
                queue.get_nowait()

    async def _logout(self, client: _Client) -> None:
        """Best effort, bounded: leave IDLE and LOGOUT so the server does not keep a dangling session."""
        if self._lost.is_set() or client.protocol.transport is None:
            return
        with contextlib.suppress(Exception, asyncio.CancelledError):
            if client.has_pending_idle():
                client.idle_done()
            await asyncio.wait_for(client.logout(), min(self.settings.timeout, 5.0))
            log.info("logged out of %s on %s", self.settings.username, self._where)

    def _close(self, client: _Client) -> None:
        for task in [*client.tasks, *client.protocol.tasks]:  # e.g. an IDLE the dead server never ended
            task.cancel()
        if client.protocol.transport is not None:
            client.protocol.transport.close()


def _quoted(name: str) -> str:
    """A folder name as an IMAP astring: atoms as they are, anything else quoted (ASCII names only)."""
    if name and re.fullmatch(r"[A-Za-z0-9._/&+-]+", name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text(response: Any) -> str:
    return b" ".join(line for line in response.lines if isinstance(line, bytes)).decode(errors="replace")


def _check(response: Any, what: str) -> None:
    if response.result != "OK":
        raise MailboxError(f"IMAP {what} failed: {response.result} {_text(response)}")
