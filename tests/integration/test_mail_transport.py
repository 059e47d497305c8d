"""Mail transport against real servers: ``smtp_send`` into an aiosmtpd sink (plain, STARTTLS, SMTPS), and
``MailboxWatcher`` on a real Dovecot with IDLE (tests/servers/mail_server.py). No sleeps: every wait is on
an event with a deadline, so a broken push fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import email
import logging
import time
from collections.abc import Iterator
from email.message import EmailMessage

import pytest

from activities.notify.mail import imap_watch
from activities.notify.mail.imap_watch import ImapSettings, MailboxAuthError, MailboxError, MailboxWatcher
from activities.notify.mail.smtp_send import MailDeliveryError, SmtpSettings, send_message
from tests.ports import free_port
from tests.servers.mail_server import DovecotServer, SmtpSink

pytestmark = pytest.mark.timeout(60)

LEO, ANA, PW = "leo@company.test", "ana@company.test", "leo-pw"
USERS = {LEO: PW, ANA: "ana-pw"}
PUSH = 5.0  # dovecot notifies IDLE clients ~0.5 s after a delivery


@pytest.fixture(scope="module")
def dovecot() -> Iterator[DovecotServer]:
    server = DovecotServer(USERS, tls=True).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sink(dovecot: DovecotServer) -> Iterator[SmtpSink]:
    with SmtpSink(deliver_to=dovecot) as s:
        yield s


@pytest.fixture(scope="module")
def tls_sink() -> Iterator[SmtpSink]:
    with SmtpSink(tls=True) as s:
        yield s


@pytest.fixture(scope="module")
def smtps_sink() -> Iterator[SmtpSink]:
    with SmtpSink(implicit_tls=True) as s:
        yield s


@pytest.fixture
def leo(dovecot: DovecotServer) -> str:
    """Leo's mailbox, emptied."""
    dovecot.expunge_all(LEO)
    return LEO


def mail(subject: str, to: str = LEO, **headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["To"], msg["Subject"] = to, subject
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(f"body of {subject}\n")
    return msg


def raw(subject: str) -> bytes:
    return mail(subject).as_bytes()


def subject_of(raw_bytes: bytes) -> str:
    return email.message_from_bytes(raw_bytes)["Subject"]


def imap(dovecot: DovecotServer, password: str = PW, **over) -> ImapSettings:
    return ImapSettings(**({"host": "127.0.0.1", "port": dovecot.port, "username": LEO, "password": password,
                            "timeout": 5.0} | over))


class Recorder:
    """on_message / on_alive callbacks that tests can await."""

    def __init__(self, fail_with: Exception | None = None) -> None:
        self.subjects: list[str] = []
        self.alive: list[float] = []
        self.events: list[str] = []  # "msg" and "alive", in order
        self.fail_with = fail_with
        self._changed = asyncio.Event()

    async def on_message(self, raw_bytes: bytes) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.subjects.append(subject_of(raw_bytes))
        self.events.append("msg")
        self._changed.set()

    def on_alive(self) -> None:
        self.alive.append(time.monotonic())
        self.events.append("alive")
        self._changed.set()

    async def until(self, predicate, timeout: float = PUSH) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def idling(self) -> None:
        """Until the watcher is in IDLE, so every message it handled is flagged Seen.

        The watcher calls on_alive after flagging each message and once IDLE has started: after the last
        message that is the second on_alive call, with no message yet the first.
        """
        def in_idle() -> bool:
            tail = self.events[len(self.events) - self.events[::-1].index("msg"):] if "msg" in self.events \
                else self.events
            return tail.count("alive") >= (2 if "msg" in self.events else 1)
        await self.until(in_idle)


def start(settings: ImapSettings, rec: Recorder, **kw) -> tuple[MailboxWatcher, asyncio.Task]:
    watcher = MailboxWatcher(settings, rec.on_message, rec.on_alive, **kw)
    return watcher, asyncio.create_task(watcher.run())


async def stop(task: asyncio.Task) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)


# --- SMTP ------------------------------------------------------------------------------------------

async def test_plain_send_reaches_sink_and_mailbox(sink: SmtpSink, dovecot: DovecotServer, leo: str) -> None:
    msg = mail("plain hello", Cc=ANA, Bcc="hidden@elsewhere.test")
    await send_message(SmtpSettings("127.0.0.1", sink.port, from_address="Bot <bot@company.test>"), msg)
    mail_from, rcpts, got = sink.wait_for(lambda r: r[2]["Subject"] == "plain hello")
    assert mail_from == "bot@company.test"
    assert sorted(rcpts) == sorted([LEO, ANA, "hidden@elsewhere.test"])
    assert got["From"] == "Bot <bot@company.test>" and got["To"] == LEO and got["Bcc"] is None
    assert got["Message-ID"] == msg["Message-ID"] and got["Message-ID"].endswith("@company.test>")
    assert email.utils.parsedate_to_datetime(got["Date"]) is not None
    assert [subject_of(m) for m in dovecot.messages(LEO)] == ["plain hello"]  # via dovecot-lda


async def test_existing_headers_are_kept_and_auth_is_used(sink: SmtpSink) -> None:
    msg = mail("with headers", From="Alice <alice@company.test>", Message_ID="<fixed@company.test>",
               Date="Mon, 01 Jan 2024 10:00:00 +0000")
    await send_message(SmtpSettings("127.0.0.1", sink.port, username="relay-user", password="x"), msg)
    mail_from, _, got = sink.wait_for(lambda r: r[2]["Subject"] == "with headers")
    assert mail_from == "simpletuner@localhost"  # envelope from the settings, header as given
    assert (got["From"], got["Message-ID"], got["Date"]) == (
        "Alice <alice@company.test>", "<fixed@company.test>", "Mon, 01 Jan 2024 10:00:00 +0000")
    assert ("PLAIN", "relay-user") in sink.logins or ("LOGIN", "relay-user") in sink.logins


async def test_starttls_send(tls_sink: SmtpSink) -> None:
    settings = SmtpSettings("127.0.0.1", tls_sink.port, use_tls=True, ca_file=tls_sink.ca_cert,
                            username="u", password="p")
    await send_message(settings, mail("over starttls"))
    assert tls_sink.wait_for(lambda r: r[2]["Subject"] == "over starttls")[1] == [LEO]


async def test_plain_settings_never_upgrade_to_starttls(tls_sink: SmtpSink) -> None:
    # the sink offers STARTTLS with a certificate nobody trusts: a silent upgrade would fail here
    await send_message(SmtpSettings("127.0.0.1", tls_sink.port), mail("plain on tls sink"))
    tls_sink.wait_for(lambda r: r[2]["Subject"] == "plain on tls sink")


async def test_implicit_tls_send(smtps_sink: SmtpSink) -> None:
    settings = SmtpSettings("localhost", smtps_sink.port, use_ssl=True, ca_file=smtps_sink.ca_cert)
    await send_message(settings, mail("over smtps"))
    smtps_sink.wait_for(lambda r: r[2]["Subject"] == "over smtps")


@pytest.mark.parametrize("case", ["untrusted-starttls", "untrusted-smtps", "no-starttls", "refused"])
async def test_delivery_errors(case: str, sink: SmtpSink, tls_sink: SmtpSink, smtps_sink: SmtpSink) -> None:
    settings = {
        "untrusted-starttls": SmtpSettings("127.0.0.1", tls_sink.port, use_tls=True),
        "untrusted-smtps": SmtpSettings("127.0.0.1", smtps_sink.port, use_ssl=True),
        "no-starttls": SmtpSettings("127.0.0.1", sink.port, use_tls=True),  # required but not offered
        "refused": SmtpSettings("127.0.0.1", free_port(), timeout=3),
    }[case]
    started = time.monotonic()
    with pytest.raises(MailDeliveryError, match=f"127.0.0.1:{settings.port}") as err:
        await send_message(settings, mail(f"fails {case}"))
    assert err.value.__cause__ is not None and not err.value.permanent
    assert time.monotonic() - started < 3


async def test_settings_validation() -> None:
    with pytest.raises(ValueError, match="mutually exclusive"):
        SmtpSettings("h", 25, use_tls=True, use_ssl=True)
    with pytest.raises(ValueError, match="recipient"):
        await send_message(SmtpSettings("127.0.0.1", 9), mail("nobody", to=""))
    assert "secret" not in repr(SmtpSettings("h", 25, username="u", password="secret"))


# --- IMAP IDLE watcher -----------------------------------------------------------------------------

async def test_watcher_existing_then_idle_push_then_nothing_old(dovecot: DovecotServer, leo: str,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    dovecot.deliver(leo, raw("already there"))
    rec = Recorder()
    _, task = start(imap(dovecot), rec)
    await rec.until(lambda: rec.subjects == ["already there"])
    await rec.idling()
    pushed = time.monotonic()
    dovecot.deliver(leo, raw("while idling"))
    await rec.until(lambda: len(rec.subjects) == 2)
    assert rec.subjects == ["already there", "while idling"]
    assert time.monotonic() - pushed < 2  # pushed by IDLE, not found by a later poll
    await rec.idling()  # so the Seen flag of the last one is stored
    assert dovecot.flags(leo) == ["S", "S"]
    with caplog.at_level(logging.INFO, logger="activities.notify.mail.imap_watch"):
        await stop(task)
    assert any("logged out" in r.message for r in caplog.records)

    again = Recorder()  # a new run sees only what is new
    _, task = start(imap(dovecot), again)
    dovecot.deliver(leo, raw("third"))
    await again.until(lambda: again.subjects)
    assert again.subjects == ["third"]
    await stop(task)


async def test_message_arriving_during_processing_is_not_left_for_later(dovecot: DovecotServer, leo: str) -> None:
    dovecot.deliver(leo, raw("first"))
    rec = Recorder()
    original = rec.on_message

    async def on_message(raw_bytes: bytes) -> None:
        if subject_of(raw_bytes) == "first":
            dovecot.deliver(leo, raw("meanwhile"))
        await original(raw_bytes)

    task = asyncio.create_task(MailboxWatcher(imap(dovecot), on_message, rec.on_alive, idle_seconds=60).run())
    await rec.until(lambda: len(rec.subjects) == 2)
    assert rec.subjects == ["first", "meanwhile"]
    await stop(task)


async def test_message_announced_during_an_empty_search_is_not_missed(dovecot: DovecotServer, leo: str,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # Dovecot searches the session's view and announces a newer message (EXISTS) only after the SEARCH;
    # aioimaplib drops that EXISTS, and IDLE would not report it again: the watcher must catch it itself.
    original, calls = imap_watch._Client.uid_search, []

    async def uid_search(self, *criteria: str, charset: str | None = None):
        calls.append(criteria)
        if len(calls) == 1:
            dovecot.deliver(leo, raw("sneaky"))
        return await original(self, *criteria, charset=charset)

    monkeypatch.setattr(imap_watch._Client, "uid_search", uid_search)
    rec = Recorder()
    _, task = start(imap(dovecot), rec, idle_seconds=60)
    await rec.until(lambda: rec.subjects == ["sneaky"])
    assert len(calls) >= 2
    await stop(task)


async def test_failing_handler_leaves_message_unseen_for_the_next_run(dovecot: DovecotServer, leo: str) -> None:
    dovecot.deliver(leo, raw("poison"))
    failing = Recorder(fail_with=RuntimeError("handler broke"))
    with pytest.raises(RuntimeError, match="handler broke"):
        await asyncio.wait_for(MailboxWatcher(imap(dovecot), failing.on_message).run(), 10)
    assert dovecot.flags(leo) == [""]

    rec = Recorder()
    _, task = start(imap(dovecot), rec)
    await rec.until(lambda: rec.subjects == ["poison"])
    await rec.idling()
    await stop(task)
    assert dovecot.flags(leo) == ["S"]


async def test_wrong_password_fails_fast(dovecot: DovecotServer) -> None:
    started = time.monotonic()
    with pytest.raises(MailboxAuthError, match=f"IMAP login failed for {LEO}") as err:
        await MailboxWatcher(imap(dovecot, password="wrong"), Recorder().on_message).run()
    assert isinstance(err.value, MailboxError)
    assert time.monotonic() - started < 3


async def test_on_alive_while_idling_and_idle_reissued(dovecot: DovecotServer, leo: str) -> None:
    rec = Recorder()
    _, task = start(imap(dovecot), rec, idle_seconds=0.4, alive_every=0.15)
    await rec.until(lambda: len(rec.alive) >= 8)  # ~1.2 s: three IDLE rounds
    gaps = [b - a for a, b in zip(rec.alive, rec.alive[1:])]
    assert max(gaps) < 0.15 + 0.5, gaps
    assert len(rec.alive) < 40  # not a busy loop
    dovecot.deliver(leo, raw("after reissue"))  # the re-issued IDLE still gets pushes
    await rec.until(lambda: rec.subjects == ["after reissue"])
    await stop(task)


async def test_imaps_with_private_ca(dovecot: DovecotServer, leo: str) -> None:
    dovecot.deliver(leo, raw("over imaps"))
    rec = Recorder()
    _, task = start(imap(dovecot, port=dovecot.ssl_port, use_ssl=True, ca_file=dovecot.ca_cert), rec)
    await rec.until(lambda: rec.subjects == ["over imaps"])
    await stop(task)
    with pytest.raises(MailboxError, match="connect"):  # the same server without trusting its CA
        await MailboxWatcher(imap(dovecot, port=dovecot.ssl_port, use_ssl=True), rec.on_message).run()


async def test_folder_with_a_space(dovecot: DovecotServer, leo: str) -> None:
    dovecot.deliver(leo, raw("in a folder"), folder="Approval Replies")
    rec = Recorder()
    _, task = start(imap(dovecot, folder="Approval Replies"), rec)
    await rec.until(lambda: rec.subjects == ["in a folder"])
    await stop(task)
    assert dovecot.messages(leo) == []  # not in the INBOX


async def test_unreachable_server() -> None:
    with pytest.raises(MailboxError, match="connect"):
        await MailboxWatcher(ImapSettings("127.0.0.1", free_port(), LEO, PW, timeout=3),
                             Recorder().on_message).run()


async def test_server_stopped_while_idling_raises_quickly() -> None:
    server = DovecotServer({LEO: PW}).start()
    try:
        rec = Recorder()
        _, task = start(imap(server), rec)
        await rec.idling()
        stopped = time.monotonic()
        await asyncio.to_thread(server.stop)
        with pytest.raises(MailboxError, match="lost"):
            await asyncio.wait_for(task, 5)
        assert time.monotonic() - stopped < 3
    finally:
        server.stop()
