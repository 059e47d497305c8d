"""Writes to notification channels shared by ``/api/cloud/notifications/channels`` and the console:
each runs the domain change in its own transaction, then tells the mailbox watcher workflow to
reconnect with the new settings at once; ``send_test`` sends a test message through a channel."""

from __future__ import annotations

import asyncio
import logging
from email.message import EmailMessage
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError

from activities.errors import InvalidInput, Unavailable
from activities.identity import users
from activities.identity.principals import Principal
from activities.notify import channels
from activities.notify.channels import ChannelCreate, ChannelFields
from activities.notify.mail.smtp_send import MailDeliveryError, send_message
from activities.secrets import credential_crypto
from api.state import AppState
from workflows.contracts import MAILBOX_CHANGED_SIGNAL, MAILBOX_WATCHER_ID

log = logging.getLogger(__name__)


async def _mailbox_changed(client: Client) -> None:
    try:
        await client.get_workflow_handle(MAILBOX_WATCHER_ID).signal(MAILBOX_CHANGED_SIGNAL)
    except (RPCError, RuntimeError) as exc:  # not started yet: the worker host starts it with fresh settings
        log.info("mailbox watcher not signalled: %s", exc)


async def create(state: AppState, principal: Principal, body: ChannelCreate, ip: str | None) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        with state.db.session() as session:
            ch = channels.create(session, body, credential_crypto.current(), principal, ip,
                                 channels.default_from(state.settings))
            session.commit()
            return channels.to_dict(ch)
    result = await asyncio.to_thread(run)
    await _mailbox_changed(state.temporal)
    return result


async def update(state: AppState, principal: Principal, channel_id: str, body: ChannelFields,
                 ip: str | None) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        with state.db.session() as session:
            ch = channels.update(session, channel_id, body, credential_crypto.current(), principal, ip,
                                 channels.default_from(state.settings))
            session.commit()
            return channels.to_dict(ch)
    result = await asyncio.to_thread(run)
    await _mailbox_changed(state.temporal)
    return result


async def delete(state: AppState, principal: Principal, channel_id: str, ip: str | None) -> None:
    def run() -> None:
        with state.db.session() as session:
            channels.delete(session, channel_id, principal, ip)
            session.commit()
    await asyncio.to_thread(run)
    await _mailbox_changed(state.temporal)


async def send_test(state: AppState, principal: Principal, channel_id: str, to: str | None) -> str:
    """Send a test message through the channel to ``to``, else to the caller's own address; the
    recipient it went to."""
    def load() -> tuple[str, str, channels.EmailTransport]:
        with state.db.session() as session:
            ch = channels.get(session, channel_id)
            me = users.find(session, principal.user_id)
            recipient = to or (me.email if me else None)
            if not recipient:
                raise InvalidInput("no recipient: pass \"to\" or set an e-mail address on your account")
            return ch.name, recipient, channels.transport_of(ch, credential_crypto.current(), state.settings)

    name, recipient, transport = await asyncio.to_thread(load)
    message = EmailMessage()
    message["To"], message["Subject"] = recipient, f"[SimpleTuner] test of notification channel {name}"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(f"This is a test message from the notification channel {name!r}.\n")
    try:
        await send_message(transport.smtp, message)
    except MailDeliveryError as exc:
        raise Unavailable(f"SMTP delivery failed: {exc}") from None
    return recipient
