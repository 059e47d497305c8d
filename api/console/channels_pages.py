"""Console pages for notification channels (permission ``admin.config``): the list, a new e-mail
channel, one channel's settings, enable/disable, delete and a test message, through
``api.channel_changes`` like ``/api/cloud/notifications/channels``. Passwords are write-only: a page
shows whether one is set, and an empty password field keeps the stored one."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from activities.errors import DomainError, InvalidInput
from activities.notify import channels
from activities.notify.channels import ChannelCreate, ChannelFields
from api import channel_changes
from api.console import sections
from api.console.pages import _blank, _db, _int, _see_other, page, posted, render, signed_in, validation_messages
from api.deps import client_ip, get_state

router = APIRouter(include_in_schema=False)
PERMISSION = "admin.config"
BASE = "/admin/notifications"
TEXT_FIELDS = ("smtp_host", "smtp_username", "from_address", "imap_host", "imap_username", "imap_folder")
SECRET_FIELDS = ("smtp_password", "imap_password")
CHECKS = ("smtp_use_tls", "smtp_use_ssl", "imap_use_ssl", "enabled")
TEST_ADDRESS = re.compile(r"^[^@\s]{1,128}@[^@\s]{1,126}$")  # what the REST test body accepts
NOTICES = {"created": "Channel created.", "saved": "Channel saved.", "deleted": "Channel deleted."}
sections.section(BASE, "Notification channels", "E-mail for approvals (SMTP) and reading replies (IMAP); send a "
                 "test message.", PERMISSION)


def _url(channel_id: str, **query: str) -> str:
    return f"{BASE}/{quote(channel_id, safe='')}" + (f"?{urlencode(query)}" if query else "")


def _fields(form: dict[str, str]) -> dict[str, Any]:
    """The form as a channel body: every non-secret field as sent (empty: none), ports as numbers,
    check boxes as true/false, passwords only when typed."""
    data: dict[str, Any] = {"name": form.get("name", "").strip()}
    data.update({key: _blank(form.get(key)) for key in TEXT_FIELDS})
    if data["imap_folder"] is None:
        del data["imap_folder"]  # empty: INBOX for a new channel, the current folder for a saved one
    data.update({key: form.get(key) == "yes" for key in CHECKS})
    data["smtp_port"] = _int(form.get("smtp_port"), None, 1, 65535, "SMTP port")
    data["imap_port"] = _int(form.get("imap_port"), None, 1, 65535, "IMAP port")
    data.update({key: form[key] for key in SECRET_FIELDS if form.get(key)})
    return data


def _shown(form: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in form.items() if k not in SECRET_FIELDS}


@router.get(BASE)
@page
async def channels_list(request: Request, done: str | None = None) -> Response:
    principal = signed_in(request)
    principal.require(PERMISSION)
    rows = await _db(request, lambda s: [channels.to_dict(c) for c in channels.list_all(s)])
    return render(request, principal, "admin_channels.html", channels=rows, notice=NOTICES.get(done or ""))


def _new_form(request: Request, principal, status: int = 200, values: dict[str, str] | None = None,
              errors: list[str] | None = None) -> Response:
    return render(request, principal, "admin_channel_new.html", status=status, errors=errors or [],
                  values=values if values is not None else {"enabled": "yes", "smtp_use_tls": "yes"})


@router.get(BASE + "/new")
@page
async def channel_new_form(request: Request) -> Response:
    principal = signed_in(request)
    principal.require(PERMISSION)
    return _new_form(request, principal)


@router.post(BASE + "/new")
@page
async def channel_create(request: Request) -> Response:
    principal, form = await posted(request, PERMISSION)
    try:
        body = ChannelCreate.model_validate({"channel_type": "email", **_fields(form)})
        made = await channel_changes.create(get_state(request), principal, body, client_ip(request))
    except ValidationError as exc:
        return _new_form(request, principal, 422, _shown(form), validation_messages(exc))
    except DomainError as exc:
        return _new_form(request, principal, exc.status_code, _shown(form), [exc.detail])
    return _see_other(_url(made["id"], done="created"))


async def _channel_page(request: Request, principal, channel_id: str, status: int = 200,
                        errors: list[str] | None = None, notice: str | None = None,
                        values: dict[str, str] | None = None) -> Response:
    channel = await _db(request, lambda s: channels.to_dict(channels.get(s, channel_id)))
    if values is None:
        values = {k: ("" if v is None else ("yes" if v is True else ("" if v is False else str(v))))
                  for k, v in channel.items()}
    return render(request, principal, "admin_channel.html", status=status, channel=channel, values=values,
                  errors=errors or [], notice=notice, from_config=channel["source"] == "config")


@router.get(BASE + "/{channel_id}")
@page
async def channel_detail(request: Request, channel_id: str, done: str | None = None, sent_to: str | None = None) -> Response:
    principal = signed_in(request)
    principal.require(PERMISSION)
    notice = NOTICES.get(done or "") or (f"Test message sent to {sent_to}." if done == "tested" and sent_to else None)
    return await _channel_page(request, principal, channel_id, notice=notice)


@router.post(BASE + "/{channel_id}")
@page
async def channel_save(request: Request, channel_id: str) -> Response:
    principal, form = await posted(request, PERMISSION)
    try:
        body = ChannelFields.model_validate(_fields(form))
        await channel_changes.update(get_state(request), principal, channel_id, body, client_ip(request))
    except ValidationError as exc:
        return await _channel_page(request, principal, channel_id, 422, validation_messages(exc), values=_shown(form))
    except DomainError as exc:
        return await _channel_page(request, principal, channel_id, exc.status_code, [exc.detail], values=_shown(form))
    return _see_other(_url(channel_id, done="saved"))


@router.post(BASE + "/{channel_id}/test")
@page
async def channel_test(request: Request, channel_id: str) -> Response:
    principal, form = await posted(request, PERMISSION)
    to = _blank(form.get("to"))
    try:
        if to is not None and not TEST_ADDRESS.match(to):
            raise InvalidInput("Send to: write one e-mail address")
        sent_to = await channel_changes.send_test(get_state(request), principal, channel_id, to)
    except DomainError as exc:
        return await _channel_page(request, principal, channel_id, exc.status_code, [exc.detail])
    return _see_other(_url(channel_id, done="tested", sent_to=sent_to))


@router.post(BASE + "/{channel_id}/delete")
@page
async def channel_delete(request: Request, channel_id: str) -> Response:
    principal, form = await posted(request, PERMISSION)
    try:
        if form.get("confirm") != "yes":
            return await _channel_page(request, principal, channel_id, 422, ["Tick the box to confirm the deletion."])
        await channel_changes.delete(get_state(request), principal, channel_id, client_ip(request))
    except DomainError as exc:
        return await _channel_page(request, principal, channel_id, exc.status_code, [exc.detail])
    return _see_other(f"{BASE}?done=deleted")
