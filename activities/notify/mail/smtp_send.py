"""Sending one e-mail through an SMTP relay (plain, STARTTLS or implicit TLS) with aiosmtplib.

TLS modes, chosen explicitly and never guessed:
  * ``use_ssl``: implicit TLS from the first byte (SMTPS, usually port 465).
  * ``use_tls``: STARTTLS is *required*; a server that does not offer it fails the send.
  * neither: plain SMTP, and STARTTLS is *not* used even if the server offers it. An opportunistic
    upgrade would verify the certificate, so a plain-configured relay with a private certificate
    would suddenly fail; and a silent upgrade hides what the configuration really does. Set
    ``use_tls`` to get encryption.
Certificates are always verified against the system trust store, plus ``ca_file`` when given (for a
private CA; it is *added* to the system store, not substituted for it).

Every failure (connection, TLS, SMTP reply, timeout) is raised as ``MailDeliveryError`` with the
original exception as ``__cause__``; ``permanent`` tells a caller that retrying will not help.
"""

from __future__ import annotations

import asyncio
import email.message
import email.utils
import logging
import ssl
from dataclasses import dataclass

import aiosmtplib

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to hand mail over. ``use_tls`` = STARTTLS, ``use_ssl`` = implicit TLS (exclusive)."""

    host: str
    port: int
    use_tls: bool = False
    use_ssl: bool = False
    username: str | None = None
    password: str | None = None
    from_address: str = "simpletuner@localhost"
    timeout: float = 15.0
    ca_file: str | None = None  # an extra CA to trust (tests, private CAs)

    def __post_init__(self) -> None:
        if self.use_tls and self.use_ssl:
            raise ValueError("use_tls (STARTTLS) and use_ssl (implicit TLS) are mutually exclusive")

    def __repr__(self) -> str:  # keeps the password out of logs and tracebacks
        return (f"SmtpSettings(host={self.host!r}, port={self.port}, use_tls={self.use_tls}, "
                f"use_ssl={self.use_ssl}, username={self.username!r}, from_address={self.from_address!r})")


class MailDeliveryError(Exception):
    """Sending failed. ``permanent`` is True for a 5xx answer (refused recipient or sender, bad login)."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def client_tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    """A verifying client context: the system CAs plus ``ca_file``.

    ``ssl.create_default_context(cafile=...)`` would trust *only* that file, so it is loaded on top.
    """
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_file:
        ctx.load_verify_locations(cafile=ca_file)
    return ctx


def _complete_headers(settings: SmtpSettings, message: email.message.EmailMessage) -> None:
    """Adds From, Message-ID and Date when missing (in place, so the caller can read the Message-ID)."""
    if message["From"] is None:
        message["From"] = settings.from_address
    if message["Message-ID"] is None:
        domain = email.utils.parseaddr(settings.from_address)[1].rpartition("@")[2] or "localhost"
        message["Message-ID"] = email.utils.make_msgid(domain=domain)  # domain given: no slow getfqdn()
    if message["Date"] is None:
        message["Date"] = email.utils.formatdate(localtime=True)


async def send_message(settings: SmtpSettings, message: email.message.EmailMessage) -> None:
    """Sends ``message`` to its To/Cc/Bcc recipients (Bcc is stripped) through ``settings``' relay.

    The envelope sender is ``settings.from_address`` (bounces go to the configured account), whatever
    the From header says. Raises ``ValueError`` for a message without recipients, ``MailDeliveryError``
    when the relay cannot be reached or refuses the message.
    """
    fields = [str(v) for h in ("To", "Cc", "Bcc") for v in message.get_all(h, [])]
    if not any(addr for _name, addr in email.utils.getaddresses(fields)):
        raise ValueError("message has no To, Cc or Bcc recipient")
    _complete_headers(settings, message)
    where = f"{settings.host}:{settings.port}"
    mode = "implicit TLS" if settings.use_ssl else "STARTTLS" if settings.use_tls else "plain"
    try:
        errors, response = await aiosmtplib.send(
            message,
            sender=email.utils.parseaddr(settings.from_address)[1] or settings.from_address,
            hostname=settings.host,
            port=settings.port,
            username=settings.username,
            password=settings.password,
            use_tls=settings.use_ssl,
            start_tls=settings.use_tls,  # False, not None: no silent opportunistic upgrade
            validate_certs=True,
            tls_context=client_tls_context(settings.ca_file) if settings.use_ssl or settings.use_tls else None,
            timeout=settings.timeout,
        )
    except aiosmtplib.SMTPResponseException as exc:
        raise MailDeliveryError(f"SMTP server {where} refused the message: {exc.code} {exc.message}",
                                permanent=exc.code >= 500) from exc
    except aiosmtplib.SMTPRecipientsRefused as exc:  # every recipient refused
        detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        raise MailDeliveryError(f"SMTP server {where} refused all recipients: {detail}",
                                permanent=all(r.code >= 500 for r in exc.recipients)) from exc
    except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as exc:  # ssl.SSLError is an OSError
        raise MailDeliveryError(f"sending mail via {where} ({mode}) failed: {exc}") from exc
    if errors:  # some recipients were refused, the others got it: report, do not fail the whole send
        log.warning("SMTP server %s refused some recipients of %s: %s", where, message["Message-ID"],
                    {rcpt: f"{r.code} {r.message}" for rcpt, r in errors.items()})
    log.info("sent %s via %s (%s): %s", message["Message-ID"], where, mode, response)
