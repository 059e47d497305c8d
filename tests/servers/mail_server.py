"""Real mail servers on 127.0.0.1 for tests: Dovecot IMAP (with IDLE) and an aiosmtpd SMTP sink.

``DovecotServer`` needs the Debian package ``dovecot-imapd`` (``tests/servers/install.sh`` installs it).
Each instance lives in its own temp dir (config, passwd-file, Maildirs, log, run/state dirs) and is
started in the foreground (``dovecot -F``) so the Popen PID is the master's; ``stop`` SIGTERMs the
imap processes (clients get ``BYE``), then the master (~1.1 s, fixed by dovecot) -- so make the fixture
module- or session-scoped and isolate tests with ``expunge_all``. Mail is delivered with ``dovecot-lda`` (~15 ms), which wakes IDLE clients like an
APPEND does (dovecot batches the notification: expect ~0.5 s from delivery to the ``EXISTS`` push).
With ``tls=True`` an IMAPS listener (``ssl_port``) is added, with a certificate from a throwaway CA
(``ca_cert``); the plain port then also offers STARTTLS.

``SmtpSink`` is an aiosmtpd ``Controller`` (own thread and event loop) that records every message and
optionally hands messages for known Dovecot users to ``DovecotServer.deliver``. It accepts AUTH with
any credentials and unauthenticated mail; with ``tls=True`` it offers STARTTLS (not required), with
``implicit_tls=True`` it speaks TLS from the first byte (SMTPS).

The set-up notes (required dovecot settings, permission pitfalls, timings) are in
``shared/recipes/mail.md``.
"""

from __future__ import annotations

import contextlib
import email
import email.message
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.servers.ldap_server import _make_certs
from tests.ports import free_port

DOVECOT = "/usr/sbin/dovecot"
DOVECOT_LDA = "/usr/lib/dovecot/dovecot-lda"
DOVEADM = "/usr/bin/doveadm"
MAIL_USER = "dovecot"  # uid 0 is refused by dovecot, so mail is stored as this existing system user

DOVECOT_CONF = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl}
disable_plaintext_auth = no
mail_location = maildir:~/Maildir
mail_uid = {mail_user}
mail_gid = {mail_user}
first_valid_uid = 1
auth_failure_delay = 0
lda_mailbox_autocreate = yes
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root}/users
}}
userdb {{
  driver = passwd-file
  args = {root}/users
  default_fields = home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = {ssl_port}
    ssl = yes
  }}
}}
# no anvil login penalty: a wrong-password test would otherwise slow the next good login by ~4 s
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


class DovecotServer:
    """``DovecotServer({"leo@company.test": "pw"}).start()``; ``.port`` (plain IMAP), ``.stop()``."""

    def __init__(self, users: dict[str, str], tls: bool = False, ready_timeout: float = 10.0) -> None:
        self.users = dict(users)
        self.tls = tls
        self.ready_timeout = ready_timeout
        self.dir: Path | None = None
        self.proc: subprocess.Popen | None = None
        self.port = self.ssl_port = 0

    @property
    def conf(self) -> str:
        return str(self.dir / "dovecot.conf")

    @property
    def ca_cert(self) -> str:
        """The CA that signed the IMAPS certificate (for 127.0.0.1 and localhost); only with ``tls=True``."""
        return str(self.dir / "ca.crt")

    def log(self) -> str:
        path = self.dir / "dovecot.log" if self.dir else None
        return path.read_text(errors="replace") if path and path.exists() else ""

    def start(self) -> DovecotServer:
        for tool in (DOVECOT, DOVECOT_LDA, DOVEADM):
            if not Path(tool).exists():
                raise RuntimeError(f"{tool} is missing: run tests/servers/install.sh")
        # not pytest's tmp_path: its base is 0700, and dovecot's auth/mail processes (not root) must reach it
        self.dir = Path(tempfile.mkdtemp(prefix="dovecot-test-"))
        os.chmod(self.dir, 0o755)
        mail_pw = pwd.getpwnam(MAIL_USER)
        (self.dir / "mail").mkdir()
        os.chown(self.dir / "mail", mail_pw.pw_uid, mail_pw.pw_gid)
        (self.dir / "users").write_text("".join(f"{u}:{{PLAIN}}{p}::::::\n" for u, p in self.users.items()))
        if self.tls:
            _make_certs(self.dir)
        for _attempt in range(5):  # a port taken between probe and bind is fatal for dovecot: retry
            if self._launch():
                return self
        log = self.log()
        self.stop()
        raise RuntimeError(f"dovecot did not start: {log[-2000:]}")

    def _launch(self) -> bool:
        self.port = free_port()
        self.ssl_port = free_port() if self.tls else 0  # port 0 disables a listener
        if self.port == self.ssl_port:
            return False
        ssl_conf = (f"ssl = yes\nssl_cert = <{self.dir}/server.crt\nssl_key = <{self.dir}/server.key"
                    if self.tls else "ssl = no")
        Path(self.conf).write_text(DOVECOT_CONF.format(root=self.dir, port=self.port, ssl_port=self.ssl_port,
                                                       ssl=ssl_conf, mail_user=MAIL_USER))
        out = open(self.dir / "master.out", "ab")  # noqa: SIM115 - config errors before log_path is open
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", self.conf], stdout=out, stderr=out,
                                     stdin=subprocess.DEVNULL)
        out.close()
        deadline = time.monotonic() + self.ready_timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.settimeout(2)
                    if s.recv(64).startswith(b"* OK"):
                        return True
            except OSError:
                pass
            try:  # doubles as the poll interval: returns at once if dovecot has exited
                self.proc.wait(timeout=0.02)
                master_out = (self.dir / "master.out").read_text(errors="replace")
                if "Address already in use" in master_out + self.log():
                    return False
                raise RuntimeError(f"dovecot exited with {self.proc.returncode}: {master_out}{self.log()[-2000:]}")
            except subprocess.TimeoutExpired:
                if time.monotonic() > deadline:
                    self._terminate()
                    raise RuntimeError(f"dovecot not answering after {self.ready_timeout}s: {self.log()[-2000:]}")

    def deliver(self, user: str, raw: bytes, sender: str = "sender@example.test", folder: str = "INBOX") -> None:
        """Local delivery with dovecot-lda (creates ``folder``); wakes IDLE clients like a real MTA would."""
        res = subprocess.run([DOVECOT_LDA, "-c", self.conf, "-d", user, "-f", sender, "-m", folder], input=raw,
                             capture_output=True, timeout=30)
        if res.returncode != 0:
            raise RuntimeError(f"dovecot-lda for {user} exited {res.returncode}: {res.stderr.decode()}"
                               f"{self.log()[-1000:]}")

    def expunge_all(self, user: str) -> None:
        """Empties every mailbox of ``user`` (isolates tests that share one server)."""
        subprocess.run([DOVEADM, "-c", self.conf, "expunge", "-u", user, "mailbox", "*", "all"], check=True,
                       capture_output=True, timeout=30)

    def _inbox_files(self, user: str) -> list[Path]:
        maildir = self.dir / "mail" / user / "Maildir"
        files = [f for sub in ("new", "cur") if (maildir / sub).is_dir() for f in (maildir / sub).iterdir()]
        return sorted(files, key=lambda f: f.name)  # Maildir names start with the delivery time

    def messages(self, user: str) -> list[bytes]:
        """The raw messages in ``user``'s INBOX (read from the Maildir), oldest first."""
        return [f.read_bytes() for f in self._inbox_files(user)]

    def flags(self, user: str) -> list[str]:
        """The Maildir flags of each INBOX message, oldest first: ``"S"`` means \\Seen, ``""`` none."""
        return [f.name.partition(":2,")[2] for f in self._inbox_files(user)]

    def _children(self) -> dict[int, str]:
        """PID -> name of the master's child processes (from /proc)."""
        found = {}
        for stat_file in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):  # exited meanwhile
                name, _, rest = stat_file.read_text().partition("(")[2].rpartition(")")
                if int(rest.split()[1]) == self.proc.pid:
                    found[int(stat_file.parent.name)] = name
        return found

    def _terminate(self) -> None:
        """Stops the client processes first, then the master.

        On SIGTERM the master exits but leaves the imap processes that serve clients running as orphans,
        so connected clients would never notice. A SIGTERM to those processes makes them send
        ``* BYE Server shutting down.`` and close, like a real server shutdown; while the master is still
        up it reaps them (no zombies as with orphans). Everything is signalled by PID, never by name.
        """
        if not self.proc or self.proc.poll() is not None:
            return
        clients = [pid for pid, name in self._children().items() if name in ("imap", "imap-login")]
        for pid in clients:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while any(Path(f"/proc/{pid}").exists() for pid in clients) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.proc.terminate()  # then the master, which takes the rest (log, stats...) with it
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # never expected: SIGKILL orphans every child
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        self._terminate()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> DovecotServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


Record = tuple[str, list[str], email.message.Message]


class _Handler:
    """The aiosmtpd handler (separate object: aiosmtpd inspects every attribute of its handler)."""

    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server, session, envelope) -> str:
        self.sink._received(envelope)
        return "250 OK"


class SmtpSink:
    """An SMTP server that keeps what it receives: ``.messages`` is a list of (mail_from, rcpt_tos, message)."""

    def __init__(self, deliver_to: DovecotServer | None = None, tls: bool = False,
                 implicit_tls: bool = False) -> None:
        self.deliver_to = deliver_to
        self.tls = tls
        self.implicit_tls = implicit_tls
        self.messages: list[Record] = []
        self.logins: list[tuple[str, str]] = []  # (mechanism, login) of every AUTH
        self._cond = threading.Condition()
        self.dir: Path | None = None
        self.controller: Controller | None = None
        self.port = 0

    @property
    def ca_cert(self) -> str:
        """The CA that signed the server certificate (for 127.0.0.1 and localhost); only with TLS."""
        return str(self.dir / "ca.crt")

    def start(self) -> SmtpSink:
        ctx = None
        if self.tls or self.implicit_tls:
            self.dir = Path(tempfile.mkdtemp(prefix="smtp-sink-"))
            _make_certs(self.dir)
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(self.dir / "server.crt", self.dir / "server.key")
        for attempt in range(5):  # aiosmtpd rejects port 0, so probe a free one and retry if it was taken
            self.port = free_port()
            self.controller = Controller(
                _Handler(self), hostname="127.0.0.1", port=self.port, server_hostname="sink.test",
                tls_context=ctx if self.tls else None, require_starttls=False,
                ssl_context=ctx if self.implicit_tls else None,
                authenticator=self._authenticate, auth_require_tls=False)
            try:
                self.controller.start()
                return self
            except (OSError, RuntimeError):
                if attempt == 4:
                    self.stop()
                    raise
        return self

    def _authenticate(self, server, session, envelope, mechanism: str, auth_data) -> AuthResult:
        login = auth_data.login.decode() if isinstance(auth_data, LoginPassword) else str(auth_data)
        with self._cond:
            self.logins.append((mechanism, login))
        return AuthResult(success=True)

    def _received(self, envelope) -> None:
        """Records the message, after handing it to Dovecot for the recipients it knows."""
        raw = envelope.original_content or envelope.content
        record = (envelope.mail_from, list(envelope.rcpt_tos), email.message_from_bytes(raw))
        if self.deliver_to is not None:
            known = {u.lower(): u for u in self.deliver_to.users}
            for rcpt in envelope.rcpt_tos:
                if rcpt.lower() in known:
                    self.deliver_to.deliver(known[rcpt.lower()], raw, envelope.mail_from or "")
        with self._cond:
            self.messages.append(record)
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[Record], bool] = lambda r: True, timeout: float = 5.0) -> Record:
        """The first recorded message (already there or arriving within ``timeout``) matching ``predicate``."""
        found: list[Record] = []

        def match() -> bool:
            found[:] = [r for r in self.messages if predicate(r)][:1]
            return bool(found)

        with self._cond:
            if not self._cond.wait_for(match, timeout):
                raise TimeoutError(f"no matching message within {timeout}s; got {len(self.messages)} message(s)")
        return found[0]

    def clear(self) -> None:
        with self._cond:
            self.messages.clear()
            self.logins.clear()

    def stop(self) -> None:
        if self.controller is not None:
            try:
                self.controller.stop()
            except AssertionError:  # stop() before a successful start()
                pass
            self.controller = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
