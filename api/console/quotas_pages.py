"""Console page of every quota (``/admin/quotas``, ``admin.config`` as ``GET /api/quotas``): each
quota with its usage, the quota types of ``GET /api/quotas/types``, user and level quotas (set, edit,
delete through the domain functions of ``api/routers/quotas.py``), and the queue's global concurrency
limits (changed with ``queue.manage``, as ``POST /api/queue/concurrency``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from activities.capacity import admission
from activities.errors import DomainError
from activities.governance import quotas, usage
from activities.identity import users
from activities.identity.permissions import LEVEL_PRIORITY
from activities.identity.principals import Principal
from api import queue_changes
from api.console import sections
from api.console.org_views import (_viewer, _done, _notice, _errors, _without_csrf, _redirect_passing,
                                   _quota_rows, _quota_context, _limit, _quota_body, QUOTA_ADMIN, PICKER_MAX)
from api.console.pages import _db, _see_other, _write, page, posted, render
from api.console.queue_page import concurrency_from_form
from api.deps import client_ip, get_state

router = APIRouter(include_in_schema=False)
sections.section("/admin/quotas", "Quotas",
                 "Every quota with its current usage; user and level quotas, the queue's global limits.",
                 "admin.config")


async def _quotas_page(request: Request, principal: Principal, status: int = 200, errors: list[str] | None = None,
                       values: dict[str, str] | None = None, notice: str | None = None) -> Response:
    def load(session):
        queue = admission.settings(session)
        limits = {"max_concurrent": queue.max_concurrent, "user_max_concurrent": queue.user_max_concurrent,
                  "in_use": usage.concurrent_jobs(session, "global", ""), "updated_by": queue.updated_by,
                  "updated_at": queue.updated_at}
        picker = [u.username for u in users.list_all(session)[:PICKER_MAX]] if principal.has("admin.users") else []
        return _quota_rows(session, quotas.list_quotas(session)), limits, picker
    rows, limits, picker = await _db(request, load)
    return render(request, principal, "admin_quotas.html", status=status, quotas=rows, limits=limits, picker=picker,
                  types=quotas.quota_types(), levels=list(LEVEL_PRIORITY), errors=errors or [], values=values or {},
                  notice=notice, may_manage_queue=principal.has("queue.manage"), **_quota_context(principal))


@router.get("/admin/quotas")
@page
async def quotas_overview(request: Request, done: str | None = None) -> Response:
    return await _quotas_page(request, _viewer(request, QUOTA_ADMIN), notice=_notice(done))


@router.post("/admin/quotas")
@page
async def scoped_quota_set(request: Request) -> Response:
    """``POST /api/quotas``: a user quota (by username) or a level quota."""
    principal, form = await posted(request, QUOTA_ADMIN)
    try:
        scope = form.get("scope", "")
        data: dict[str, Any] = {"scope": scope, "quota_type": form.get("quota_type", ""), "limit": _limit(form),
                                "action": form.get("action") or "block"}
        if scope == "user":
            data["username"] = (form.get("username") or "").strip() or None
        else:
            data["level"] = form.get("level") or None
        body = quotas.ScopedQuotaBody.model_validate(data)
        await _write(request, quotas.set_scoped_quota, body, principal, client_ip(request))
    except (ValidationError, DomainError) as exc:
        errors, status = _errors(exc)
        return await _quotas_page(request, principal, status, errors, {"form": "scoped", **_without_csrf(form)})
    return _redirect_passing(request, _done("/admin/quotas", "quota"))


@router.post("/admin/quotas/global")
@page
async def global_limits_set(request: Request) -> Response:
    """``POST /api/queue/concurrency`` (``queue.manage``): the queue's limits on jobs at once, in all
    and per user (blank: unlimited)."""
    principal, form = await posted(request, "queue.manage")
    try:
        body = concurrency_from_form(form)
        await queue_changes.set_concurrency(get_state(request), principal, body, client_ip(request))
    except (ValidationError, DomainError) as exc:
        errors, status = _errors(exc)
        principal.require(QUOTA_ADMIN)  # the page itself needs it
        return await _quotas_page(request, principal, status, errors, {"form": "global", **_without_csrf(form)})
    return _see_other(_done("/admin/quotas", "limits"))


@router.post("/admin/quotas/{quota_id}")
@page
async def quota_edit(request: Request, quota_id: str) -> Response:
    """A new limit or action for an existing quota: the REST set route of its scope (same scope and
    type, so it replaces it)."""
    principal, form = await posted(request, QUOTA_ADMIN)

    def store(session) -> None:
        quota = quotas.get(session, quota_id)
        body = _quota_body({**form, "quota_type": quota.quota_type})
        quotas.set_quota(session, quota.scope, quota.scope_id, body, principal, client_ip(request))
    try:
        await _write(request, store)
    except (ValidationError, DomainError) as exc:
        errors, status = _errors(exc)
        return await _quotas_page(request, principal, status, errors, {"form": f"edit-{quota_id}", **_without_csrf(form)})
    return _redirect_passing(request, _done("/admin/quotas", "quota"))


@router.post("/admin/quotas/{quota_id}/delete")
@page
async def quota_delete(request: Request, quota_id: str) -> Response:
    """``DELETE /api/quotas/{quota_id}``."""
    principal, _ = await posted(request, QUOTA_ADMIN)
    await _write(request, quotas.delete_quota, quota_id, principal, client_ip(request))
    return _redirect_passing(request, _done("/admin/quotas", "quota-deleted"))
