"""The console's Approvals page: pending requests with why they wait, approve or reject with a
comment (one or many at once), a submitter's own cancel, and the history.

Decisions go through ``api.approval_decisions`` like the REST routes: checked in the database,
recorded, then delivered to the job's workflow as an update.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response

from activities.errors import DomainError, InvalidInput
from activities.governance import approvals
from activities.paging import PageRequest
from api.approval_decisions import BulkBody, decide, decide_many
from api.console.auth import check_csrf, read_form_lists
from api.console.pages import _blank, _db, _see_other, page, pager, render, signed_in
from api.deps import client_ip, get_state

router = APIRouter(include_in_schema=False)
VIEWS = ("pending", "history")
DECISIONS: dict[str, Literal["approve", "reject", "cancel"]] = {"approve": "approve", "reject": "reject",
                                                                "cancel": "cancel"}
MAX_COMMENT = 2000


def _view(value: str | None) -> str:
    view = _blank(value) or "pending"
    if view not in VIEWS:
        raise InvalidInput(f"unknown view {view!r}: pending or history")
    return view


async def _render_list(request: Request, view: str, cursor: str | None, status: int = 200,
                       errors: list[str] | None = None, notice: str | None = None) -> Response:
    principal = signed_in(request)

    def load(session):
        found = approvals.list_requests(session, principal, "pending" if view == "pending" else None, None, None,
                                        PageRequest(limit=50, cursor=cursor), decided_only=view == "history")
        return [approvals.to_dict(r) for r in found.rows], found
    rows, found = await _db(request, load)
    return render(request, principal, "approvals.html", status=status, view=view, requests=rows,
                  **pager("/approvals", found, cursor, {"view": view}),
                  may_decide=principal.has("admin.approve"), me=principal.user_id, errors=errors or [],
                  notice=notice)


@router.get("/approvals")
@page
async def approvals_list(request: Request, view: str | None = None, cursor: str | None = None,
                         decided: str | None = None, ok: str | None = None, failed: str | None = None) -> Response:
    notice = None
    if decided in ("approved", "rejected", "cancelled"):
        notice = f"Request {decided}."
    elif ok is not None and failed is not None and ok.isdigit() and failed.isdigit():
        notice = f"{ok} request(s) decided, {failed} refused."
    return await _render_list(request, _view(view), _blank(cursor), notice=notice)


def _comment(form: dict[str, list[str]]) -> str | None:
    comment = _blank((form.get("comment") or [""])[0])
    if comment is not None and len(comment) > MAX_COMMENT:
        raise InvalidInput(f"comment: at most {MAX_COMMENT} characters")
    return comment


def _decision(form: dict[str, list[str]]) -> Literal["approve", "reject", "cancel"]:
    decision = DECISIONS.get((form.get("decision") or [""])[0])
    if decision is None:
        raise InvalidInput("choose approve, reject or cancel")
    return decision


@router.post("/approvals/{request_id}/decide")
@page
async def approvals_decide(request: Request, request_id: str) -> Response:
    principal = signed_in(request)
    form = await read_form_lists(request)
    check_csrf(principal, {k: v[0] for k, v in form.items()})
    try:
        decision = _decision(form)
        principal.require("job.cancel.own" if decision == "cancel" else "admin.approve")
        state = get_state(request)
        req = await decide(state.db, state.temporal, principal, request_id, decision, _comment(form),
                           client_ip(request))
    except DomainError as exc:
        return await _render_list(request, "pending", None, exc.status_code,
                                  [f"Request {request_id}: {exc.detail}"])
    return _see_other("/approvals?" + urlencode({"decided": req["status"]}))


@router.post("/approvals/bulk")
@page
async def approvals_bulk(request: Request) -> Response:
    principal = signed_in(request)
    form = await read_form_lists(request)
    check_csrf(principal, {k: v[0] for k, v in form.items()})
    principal.require("admin.approve")
    try:
        decision = _decision(form)
        if decision == "cancel":
            raise InvalidInput("bulk decisions approve or reject")
        ids = [i for i in form.get("request_id", []) if i.strip()]
        if not ids:
            raise InvalidInput("select at least one request")
        body = BulkBody(request_ids=ids[:200], comment=_comment(form))
        state = get_state(request)
        result: dict[str, Any] = await decide_many(state.db, state.temporal, principal, body, decision,
                                                   client_ip(request))
    except DomainError as exc:
        return await _render_list(request, "pending", None, exc.status_code, [exc.detail])
    refused = [f"Request {r['request_id']}: {r['detail']}" for r in result["results"] if not r["ok"]]
    if refused:
        return await _render_list(request, "pending", None, 200, refused,
                                  notice=f"{result['succeeded']} request(s) decided, {result['failed']} refused.")
    return _see_other("/approvals?" + urlencode({"ok": result["succeeded"], "failed": 0}))
