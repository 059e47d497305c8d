"""Notification channels (admin.config): /api/cloud/notifications/channels.

The e-mail channel sends approval mail (SMTP) and, with IMAP settings, reads the replies. Writes and
the test message live in ``api.channel_changes`` (shared with the console).
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import ConfigDict, Field
from sqlalchemy.exc import IntegrityError

from activities.request_body import RequestBody
from activities.notify import channels
from activities.secrets import credential_crypto
from activities.notify.channels import ChannelCreate, ChannelFields
from activities.identity.principals import Principal
from api import channel_changes
from api.deps import SessionDep, StateDep, client_ip, require
from api.schemas.base import Deleted
from api.schemas.channels import Channel, ChannelList, ChannelTestSent
from api.state import AppState

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


@router.get("", response_model=ChannelList)
def list_channels(session: SessionDep, _: ConfigAdminDep) -> dict:
    return {"channels": [channels.to_dict(c) for c in channels.list_all(session)]}


@router.post("", status_code=201, response_model=Channel)
async def create_channel(body: ChannelCreate, state: StateDep, principal: ConfigAdminDep, request: Request) -> dict:
    return await channel_changes.create(state, principal, body, client_ip(request))


@router.get("/{channel_id}", response_model=Channel)
def get_channel(channel_id: str, session: SessionDep, _: ConfigAdminDep) -> dict:
    return channels.to_dict(channels.get(session, channel_id))


@router.patch("/{channel_id}", response_model=Channel)
async def patch_channel(channel_id: str, body: ChannelFields, state: StateDep, principal: ConfigAdminDep,
                        request: Request) -> dict:
    return await channel_changes.update(state, principal, channel_id, body, client_ip(request))


@router.delete("/{channel_id}", response_model=Deleted)
async def delete_channel(channel_id: str, state: StateDep, principal: ConfigAdminDep, request: Request) -> dict:
    await channel_changes.delete(state, principal, channel_id, client_ip(request))
    return {"deleted": channel_id}


@router.post("/{channel_id}/test", response_model=ChannelTestSent)
async def test_channel(channel_id: str, state: StateDep, principal: ConfigAdminDep,
                       body: TestBody | None = None) -> dict:
    """Send a test message (to ``to``, else to the caller's own address) through this channel."""
    to = await channel_changes.send_test(state, principal, channel_id, body.to if body else None)
    return {"sent": True, "to": to}
