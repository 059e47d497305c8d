"""Notification channels (admin.config): /api/cloud/notifications/channels.

The e-mail channel sends approval mail (SMTP) and, with IMAP settings, reads the replies. A change
is signalled to the mailbox watcher workflow so it reconnects with the new settings at once.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from email.message import EmailMessage
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from temporalio.client import Client
from temporalio.service import RPCError

from activities.request_body import RequestBody
from activities.errors import InvalidInput, Unavailable
from activities.notify.mail.smtp_send import MailDeliveryError, send_message
from activities.notify import channels
from activities.secrets import credential_crypto
from activities.notify.channels import ChannelCreate, ChannelFields
from activities.identity import users
from activities.identity.principals import Principal
from api.deps import SessionDep, StateDep, client_ip, require
from api.state import AppState
from workflows.contracts import MAILBOX_CHANGED_SIGNAL, MAILBOX_WATCHER_ID

log = logging.getLogger(__name__)
ConfigAdminDep = Annotated[Principal, Depends(require("admin.config"))]


@asynccontextmanager
async def _lifespan(app: FastAPI):
    """Mirror ``notifications.email`` of the config file (runs after the credentials router installed
    the cipher: routers start in name order)."""
    core: AppState | None = getattr(app.state, "core", None)
    if core is not None:
        await asyncio.to_thread(_sync_config_channel, core)
    yield


def _sync_config_channel(core: AppState) -> None:
    try:
        with core.db.session() as session:
            channels.sync_config_channel(session, core.settings.notifications.email, credential_crypto.current())
            session.commit()
    except IntegrityError:
        log.info("another process mirrored the config file's e-mail channel at the same time")


router = APIRouter(prefix="/api/cloud/notifications/channels", tags=["notifications"], lifespan=_lifespan)


class TestBody(RequestBody):
    model_config = ConfigDict(extra="forbid")
    to: str | None = Field(None, max_length=255, pattern=r"^[^@\s]+@[^@\s]+$")


async def _mailbox_changed(client: Client) -> None:
    try:
        await client.get_workflow_handle(MAILBOX_WATCHER_ID).signal(MAILBOX_CHANGED_SIGNAL)
    except (RPCError, RuntimeError) as exc:  # not started yet: the worker host starts it with fresh settings
        log.info("mailbox watcher not signalled: %s", exc)


@router.get("")
def list_channels(session: SessionDep, _: ConfigAdminDep) -> dict:
    return {"channels": [channels.to_dict(c) for c in channels.list_all(session)]}


@router.post("", status_code=201)
async def create_channel(body: ChannelCreate, state: StateDep, principal: ConfigAdminDep, request: Request) -> dict:
    def create() -> dict:
        with state.db.session() as session:
            ch = channels.create(session, body, credential_crypto.current(), principal, client_ip(request),
                                 channels.default_from(state.settings))
            session.commit()
            return channels.to_dict(ch)
    result = await asyncio.to_thread(create)
    await _mailbox_changed(state.temporal)
    return result


@router.get("/{channel_id}")
def get_channel(channel_id: str, session: SessionDep, _: ConfigAdminDep) -> dict:
    return channels.to_dict(channels.get(session, channel_id))


@router.patch("/{channel_id}")
async def patch_channel(channel_id: str, body: ChannelFields, state: StateDep, principal: ConfigAdminDep,
                        request: Request) -> dict:
    def update() -> dict:
        with state.db.session() as session:
            ch = channels.update(session, channel_id, body, credential_crypto.current(), principal, client_ip(request),
                                 channels.default_from(state.settings))
            session.commit()
            return channels.to_dict(ch)
    result = await asyncio.to_thread(update)
    await _mailbox_changed(state.temporal)
    return result


@router.delete("/{channel_id}")
async def delete_channel(channel_id: str, state: StateDep, principal: ConfigAdminDep, request: Request) -> dict:
    def delete() -> None:
        with state.db.session() as session:
            channels.delete(session, channel_id, principal, client_ip(request))
            session.commit()
    await asyncio.to_thread(delete)
    await _mailbox_changed(state.temporal)
    return {"deleted": channel_id}


@router.post("/{channel_id}/test")
async def test_channel(channel_id: str, state: StateDep, principal: ConfigAdminDep,
                       body: TestBody | None = None) -> dict:
    """Send a test message (to ``to``, else to the caller's own address) through this channel."""
    def load() -> tuple[str, str, channels.EmailTransport]:
        with state.db.session() as session:
            ch = channels.get(session, channel_id)
            me = users.find(session, principal.user_id)
            to = (body.to if body else None) or (me.email if me else None)
            if not to:
                raise InvalidInput("no recipient: pass \"to\" or set an e-mail address on your account")
            return ch.name, to, channels.transport_of(ch, credential_crypto.current(), state.settings)

    name, to, transport = await asyncio.to_thread(load)
    message = EmailMessage()
    message["To"], message["Subject"] = to, f"[SimpleTuner] test of notification channel {name}"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(f"This is a test message from the notification channel {name!r}.\n")
    try:
        await send_message(transport.smtp, message)
    except MailDeliveryError as exc:
        raise Unavailable(f"SMTP delivery failed: {exc}") from None
    return {"sent": True, "to": to}
