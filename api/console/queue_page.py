"""The console's Queue page: the line in order with positions and reasons, the jobs holding slots,
counts per user, and for ``queue.manage`` the concurrency limits and priority overrides."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from activities.capacity import queue_view
from activities.errors import DomainError
from activities.paging import PageRequest
from api import queue_changes
from api.console.pages import _blank, _db, _int, _see_other, page, posted, render, signed_in, validation_messages
from api.deps import client_ip, get_state

router = APIRouter(include_in_schema=False)


async def _render(request: Request, cursor: str | None = None, status: int = 200,
                  errors: list[str] | None = None) -> Response:
    principal = signed_in(request)
    only_user = None if principal.has("job.view.all") else principal.user_id

    def load(session):
        return (queue_view.snapshot(session, only_user, PageRequest(limit=100, cursor=cursor)),
                queue_view.stats(session, only_user))
    snapshot, stats = await _db(request, load)
    next_url = f"/queue?cursor={quote(snapshot['next_cursor'])}" if snapshot.get("next_cursor") else None
    return render(request, principal, "queue.html", status=status, snapshot=snapshot, stats=stats,
                  may_manage=principal.has("queue.manage"), everyone=only_user is None, errors=errors or [],
                  next_url=next_url, first_url="/queue", paged=bool(cursor))


def concurrency_from_form(form: dict[str, str]) -> queue_changes.ConcurrencyBody:
    """The queue's limits on jobs at once, in all and per user, as a form gives them (blank: unlimited)."""
    return queue_changes.ConcurrencyBody(
        max_concurrent=_int(form.get("max_concurrent"), None, 1, 100_000, "Jobs at once"),
        user_max_concurrent=_int(form.get("user_max_concurrent"), None, 1, 100_000, "Jobs at once per user"))


@router.get("/queue")
@page
async def queue(request: Request, cursor: str | None = None) -> Response:
    return await _render(request, _blank(cursor))


@router.post("/queue/concurrency")
@page
async def queue_concurrency(request: Request) -> Response:
    principal, form = await posted(request, "queue.manage")
    try:
        body = concurrency_from_form(form)
        await queue_changes.set_concurrency(get_state(request), principal, body, client_ip(request))
    except ValidationError as exc:
        return await _render(request, status=422, errors=validation_messages(exc))
    except DomainError as exc:
        return await _render(request, status=exc.status_code, errors=[exc.detail])
    return _see_other("/queue")


@router.post("/queue/{job_id}/priority")
@page
async def queue_priority(request: Request, job_id: str) -> Response:
    principal, form = await posted(request, "queue.manage")
    try:
        priority = None if form.get("clear") else _int(form.get("priority"), None, 0, 1000, "Priority")
        await queue_changes.set_priority(get_state(request), principal, job_id,
                                         queue_changes.PriorityBody(priority=priority), client_ip(request))
    except ValidationError as exc:
        return await _render(request, status=422, errors=validation_messages(exc))
    except DomainError as exc:
        return await _render(request, status=exc.status_code, errors=[f"Job {job_id}: {exc.detail}"])
    return _see_other("/queue")
