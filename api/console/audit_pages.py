"""The console's Audit log page (permission ``admin.audit``, as over REST): entries newest first, paged,
filtered by action, actor, target type, target id and a time window, read through the domain function
of ``GET /api/audit``. Times are UTC, both shown and typed; a filter that cannot be read is named in
the page's alert (422), never a server error.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Request, Response

from activities.audit import reads
from activities.errors import InvalidInput
from activities.paging import PageRequest
from api.console import sections
from api.console.pages import _blank, _db, _int, page, pager, render, signed_in

router = APIRouter(include_in_schema=False)
sections.section("/admin/audit", "Audit log", "Who changed what, when and from where: every administrative change, "
                 "sign-in and decision, newest first.", "admin.audit")
TEXT_FILTERS = ("action", "actor", "target_type", "target_id")
MAX_FILTER = 200
PAGE_SIZE, MAX_PAGE_SIZE = 50, 200


def _text(name: str, value: str | None) -> str | None:
    text = _blank(value)
    if text is not None and len(text) > MAX_FILTER:
        raise InvalidInput(f"{name}: at most {MAX_FILTER} characters")
    return text


def _moment(name: str, value: str | None) -> datetime | None:
    """A ``datetime-local`` value (``YYYY-MM-DDTHH:MM``, seconds optional) read as UTC; a value with its
    own offset keeps it."""
    text = _blank(value)
    if text is None:
        return None
    try:
        if len(text) > 40:
            raise ValueError(text)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{name}: not a date and time (YYYY-MM-DDTHH:MM, UTC)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _entry(entry) -> dict[str, Any]:
    row = reads.to_dict(entry)
    row["details_text"] = json.dumps(row["details"], sort_keys=True, ensure_ascii=False, default=str)
    return row


@router.get("/admin/audit")
@page
async def audit_log(request: Request, action: str | None = None, actor: str | None = None,
                    target_type: str | None = None, target_id: str | None = None, since: str | None = None,
                    until: str | None = None, cursor: str | None = None, limit: str | None = None) -> Response:
    principal = signed_in(request)
    principal.require("admin.audit")
    typed = {"action": action, "actor": actor, "target_type": target_type, "target_id": target_id, "since": since,
             "until": until}
    filters = {name: _blank(value) for name, value in typed.items()}
    errors: list[str] = []
    parsed: dict[str, Any] = {}
    for name in typed:
        try:
            parsed[name] = _moment(name, typed[name]) if name in ("since", "until") else _text(name, typed[name])
        except InvalidInput as exc:
            errors.append(exc.detail)
    try:
        size = _int(limit, PAGE_SIZE, 1, MAX_PAGE_SIZE, "limit")
    except InvalidInput as exc:
        errors.append(exc.detail)
        size = PAGE_SIZE
    context: dict[str, Any] = {"entries": [], "total": None}
    if not errors:
        page_request = PageRequest(limit=size, cursor=_blank(cursor))

        def load(session):
            found = reads.list_entries(session, *(parsed[name] for name in (*TEXT_FILTERS, "since", "until")),
                                       page=page_request)
            return [_entry(e) for e in found.rows], found
        try:
            entries, found = await _db(request, load)
            keep = {**filters, "limit": None if size == PAGE_SIZE else size}
            context = {"entries": entries, **pager("/admin/audit", found, _blank(cursor), keep)}
        except InvalidInput as exc:  # a cursor of another list
            errors.append(exc.detail)
    return render(request, principal, "admin_audit.html", status=422 if errors else 200, filters=filters,
                  errors=errors, limit=None if size == PAGE_SIZE else size, **context)
