"""Notification channels. The e-mail channel sends approval mail over SMTP and reads replies over IMAP.

Passwords are stored encrypted with the credential cipher and never returned. A channel written
in the config file (``notifications.email``) is mirrored into the table at start-up as the
read-only channel ``config-email``.
"""

from __future__ import annotations

import hashlib
import socket
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator
from sqlmodel import Session, col, select

from activities.request_body import RequestBody
from activities.db.models import utcnow
from activities.db.models_approvals import NotificationChannel
from activities.errors import Conflict, InvalidInput, NotFound
from activities.notify.mail.imap_watch import ImapSettings
from activities.notify.mail.smtp_send import SmtpSettings
from activities.audit.trail import audit
from activities.secrets.credential_crypto import CredentialCipher
from activities.identity.principals import Principal
from activities.secrets.tokens import new_id
from activities.settings import EmailSettings, Settings

CONFIG_CHANNEL = "config-email"
_SECRET_FIELDS = ("smtp_password", "imap_password")
_NOT_NULL = ("name", "enabled", "smtp_use_tls", "smtp_use_ssl", "imap_use_ssl", "imap_folder")  # always hold a value


class ChannelFields(RequestBody):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")
    enabled: bool | None = None
    smtp_host: str | None = Field(None, min_length=1, max_length=255)
    smtp_port: int | None = Field(None, ge=1, le=65535)
    smtp_use_tls: bool | None = None
    smtp_use_ssl: bool | None = None
    smtp_username: str | None = Field(None, max_length=255)
    smtp_password: str | None = Field(None, max_length=1024)
    from_address: str | None = Field(None, max_length=255, pattern=r"^[^@\s]+@[^@\s]+$")
    imap_host: str | None = Field(None, max_length=255)
    imap_port: int | None = Field(None, ge=1, le=65535)
    imap_use_ssl: bool | None = None
    imap_username: str | None = Field(None, max_length=255)
    imap_password: str | None = Field(None, max_length=1024)
    imap_folder: str | None = Field(None, min_length=1, max_length=255)


class ChannelCreate(ChannelFields):
    channel_type: Literal["email"]
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")
    smtp_host: str = Field(min_length=1, max_length=255)

    @model_validator(mode="after")
    def _tls_modes(self) -> "ChannelCreate":
        if self.smtp_use_tls and self.smtp_use_ssl:
            raise ValueError("smtp_use_tls (STARTTLS) and smtp_use_ssl (implicit TLS) exclude each other")
        return self


def to_dict(ch: NotificationChannel) -> dict[str, Any]:
    return {"id": ch.id, "name": ch.name, "channel_type": ch.channel_type, "enabled": ch.enabled, "source": ch.source,
            "smtp_host": ch.smtp_host, "smtp_port": ch.smtp_port, "smtp_use_tls": ch.smtp_use_tls,
            "smtp_use_ssl": ch.smtp_use_ssl, "smtp_username": ch.smtp_username,
            "smtp_password_set": ch.smtp_password_encrypted is not None, "from_address": ch.from_address,
            "imap_host": ch.imap_host, "imap_port": ch.imap_port, "imap_use_ssl": ch.imap_use_ssl,
            "imap_username": ch.imap_username, "imap_password_set": ch.imap_password_encrypted is not None,
            "imap_folder": ch.imap_folder, "reads_replies": _reads_replies(ch),
            "created_at": ch.created_at, "updated_at": ch.updated_at}


def _reads_replies(ch: NotificationChannel) -> bool:
    return bool(ch.imap_host and ch.imap_username and ch.imap_password_encrypted)


def get(session: Session, channel_id: str) -> NotificationChannel:
    ch = session.get(NotificationChannel, channel_id)
    if ch is None:
        raise NotFound(f"notification channel {channel_id!r} not found")
    return ch


def list_all(session: Session) -> list[NotificationChannel]:
    return list(session.exec(select(NotificationChannel).order_by(NotificationChannel.created_at)))


def default_from(settings: Settings) -> str:
    """The sender an e-mail channel uses when it names none and its SMTP login is no address: the
    installation's ``notifications.email.from_address``, else ``simpletuner@<this host's name>``."""
    if settings.notifications.email is not None:
        return settings.notifications.email.from_address
    return f"simpletuner@{socket.getfqdn() or 'localhost'}"


def _apply(ch: NotificationChannel, fields: dict[str, Any], cipher: CredentialCipher,
           default_sender: str | None = None) -> None:
    for key in _NOT_NULL:
        if key in fields and fields[key] is None:
            raise InvalidInput(f"{key} must not be null (leave it out instead)")
    for key, value in fields.items():
        if key in _SECRET_FIELDS:
            setattr(ch, f"{key}_encrypted", cipher.encrypt(value) if value else None)
        elif key != "channel_type":
            setattr(ch, key, value)
    if ch.smtp_use_tls and ch.smtp_use_ssl:
        raise InvalidInput("smtp_use_tls (STARTTLS) and smtp_use_ssl (implicit TLS) exclude each other")
    if ch.imap_host and not (ch.imap_username and ch.imap_password_encrypted):
        raise InvalidInput("imap_host needs imap_username and imap_password to read approval replies")
    ch.smtp_port = ch.smtp_port or (465 if ch.smtp_use_ssl else 587)
    if ch.imap_host:
        ch.imap_port = ch.imap_port or (993 if ch.imap_use_ssl else 143)
    login = ch.smtp_username if ch.smtp_username and "@" in ch.smtp_username else None
    ch.from_address = ch.from_address or login or default_sender
    if not ch.from_address or "@" not in ch.from_address:
        raise InvalidInput("from_address is required (an e-mail address) unless smtp_username is one")
    ch.updated_at = utcnow()


def _unique_name(session: Session, name: str, except_id: str | None = None) -> None:
    other = session.exec(select(NotificationChannel).where(NotificationChannel.name == name)).first()
    if other is not None and other.id != except_id:
        raise Conflict(f"a notification channel named {name!r} already exists")


def create(session: Session, body: ChannelCreate, cipher: CredentialCipher, actor: Principal,
           ip: str | None, default_sender: str | None = None) -> NotificationChannel:
    _unique_name(session, body.name)
    ch = NotificationChannel(id=new_id("ch"), name=body.name, channel_type=body.channel_type)
    _apply(ch, body.model_dump(exclude_unset=True), cipher, default_sender)
    session.add(ch)
    audit(session, actor.username, "notification_channel.created", "notification_channel", ch.id,
          {"name": ch.name, "channel_type": ch.channel_type}, ip=ip)
    return ch


def update(session: Session, channel_id: str, body: ChannelFields, cipher: CredentialCipher, actor: Principal,
           ip: str | None, default_sender: str | None = None) -> NotificationChannel:
    ch = get(session, channel_id)
    if ch.source == "config":
        raise Conflict(f"channel {ch.name!r} comes from the config file; change it there")
    fields = body.model_dump(exclude_unset=True)
    if fields.get("name"):
        _unique_name(session, fields["name"], except_id=ch.id)
    _apply(ch, fields, cipher, default_sender)
    session.add(ch)
    audit(session, actor.username, "notification_channel.updated", "notification_channel", ch.id,
          {k: ("***" if k in _SECRET_FIELDS else v) for k, v in fields.items()}, ip=ip)
    return ch


def delete(session: Session, channel_id: str, actor: Principal, ip: str | None) -> None:
    ch = get(session, channel_id)
    if ch.source == "config":
        raise Conflict(f"channel {ch.name!r} comes from the config file; remove it there")
    session.delete(ch)
    audit(session, actor.username, "notification_channel.deleted", "notification_channel", ch.id, {"name": ch.name},
          ip=ip)


def sync_config_channel(session: Session, email: EmailSettings | None, cipher: CredentialCipher) -> None:
    """Mirror ``notifications.email`` from the config file (or remove the mirror when it is gone)."""
    ch = session.exec(select(NotificationChannel).where(NotificationChannel.name == CONFIG_CHANNEL)).first()
    if email is None:
        if ch is not None and ch.source == "config":
            session.delete(ch)
        return
    if ch is None:
        ch = NotificationChannel(id=new_id("ch"), name=CONFIG_CHANNEL, channel_type="email", source="config")
    wanted = email.model_dump()
    if ch.smtp_host is not None and all(_stored(ch, key, cipher) == value for key, value in wanted.items()):
        return
    _apply(ch, wanted, cipher)
    session.add(ch)


def _stored(ch: NotificationChannel, key: str, cipher: CredentialCipher) -> Any:
    if key in _SECRET_FIELDS:
        encrypted = getattr(ch, f"{key}_encrypted")
        return cipher.decrypt(encrypted) if encrypted else None
    return getattr(ch, key)


# ---- what the mail activities use -------------------------------------------------------------

@dataclass(frozen=True)
class EmailTransport:
    channel_id: str
    smtp: SmtpSettings
    imap: ImapSettings | None


def email_transport(session: Session, cipher: CredentialCipher, settings: Settings) -> EmailTransport | None:
    """The first enabled e-mail channel (oldest first), decrypted for use; None when there is none."""
    ch = session.exec(select(NotificationChannel).where(NotificationChannel.channel_type == "email",
                                                        col(NotificationChannel.enabled).is_(True))
                      .order_by(NotificationChannel.created_at)).first()
    if ch is None or not ch.smtp_host:
        return None
    return transport_of(ch, cipher, settings)


def transport_of(ch: NotificationChannel, cipher: CredentialCipher, settings: Settings) -> EmailTransport:
    smtp = SmtpSettings(host=ch.smtp_host or "", port=ch.smtp_port or 587, use_tls=ch.smtp_use_tls,
                        use_ssl=ch.smtp_use_ssl, username=ch.smtp_username,
                        password=cipher.decrypt(ch.smtp_password_encrypted) if ch.smtp_password_encrypted else None,
                        from_address=ch.from_address or "simpletuner@localhost", ca_file=settings.mail_ca_file)
    imap = None
    if _reads_replies(ch):
        imap = ImapSettings(host=ch.imap_host or "", port=ch.imap_port or 143, username=ch.imap_username or "",
                            password=cipher.decrypt(ch.imap_password_encrypted or ""), use_ssl=ch.imap_use_ssl,
                            folder=ch.imap_folder, ca_file=settings.mail_ca_file)
    return EmailTransport(channel_id=ch.id, smtp=smtp, imap=imap)


def fingerprint(transport: EmailTransport | None) -> str:
    """Changes whenever the IMAP side changes: the mailbox watcher restarts on a new fingerprint."""
    if transport is None or transport.imap is None:
        return ""
    i = transport.imap
    text = f"{transport.channel_id}|{i.host}|{i.port}|{i.username}|{i.password}|{i.use_ssl}|{i.folder}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]
