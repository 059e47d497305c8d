"""Answers of the notification channel routes: a channel without its passwords
(``activities.notify.channels.to_dict``), the list and a test message."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from api.schemas.base import Answer


class Channel(Answer):
    id: str
    name: str
    channel_type: Literal["email"]
    enabled: bool
    source: str = Field(description="api, or config for the config file's read-only channel")
    smtp_host: str | None
    smtp_port: int | None
    smtp_use_tls: bool = Field(description="STARTTLS")
    smtp_use_ssl: bool = Field(description="implicit TLS")
    smtp_username: str | None
    smtp_password_set: bool
    from_address: str | None
    imap_host: str | None
    imap_port: int | None
    imap_use_ssl: bool
    imap_username: str | None
    imap_password_set: bool
    imap_folder: str
    reads_replies: bool = Field(description="IMAP is configured: approvers may answer by e-mail")
    created_at: datetime
    updated_at: datetime


class ChannelList(Answer):
    channels: list[Channel]


class ChannelTestSent(Answer):
    sent: Literal[True]
    to: str
