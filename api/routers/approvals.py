"""Approval requests: list and read them; approve, reject or cancel through the job's workflow."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from activities.errors import NotFound
from activities.governance import approvals
from activities.identity.principals import Principal
from api.approval_decisions import BulkBody, DecisionBody, decide, decide_many
from activities.paging import PageRequest
from api.deps import PrincipalDep, SessionDep, StateDep, client_ip, require
from api.paging import PageDep
from api.schemas.approvals import ApprovalRequest, BulkResult, PendingCount, RequestPage, RequestStatus

router = APIRouter(prefix="/api/approvals/requests", tags=["approvals"])
ApproverDep = Annotated[Principal, Depends(require("admin.approve"))]


@router.get("", response_model=RequestPage)
def list_requests(session: SessionDep, principal: PrincipalDep, status: RequestStatus | None = None,
                  job_id: str | None = None, user: str | None = None, page: PageDep = PageRequest()) -> dict:
    found = approvals.list_requests(session, principal, status, job_id, user, page)
    return {"requests": [approvals.to_dict(r) for r in found.rows], **found.fields(), "limit": page.limit,
            "offset": page.offset}


@router.get("/pending/count", response_model=PendingCount)
def pending_count(session: SessionDep, principal: PrincipalDep) -> dict:
    return {"count": approvals.pending_count(session, principal)}


@router.get("/job/{job_id}", response_model=ApprovalRequest)
def request_for_job(job_id: str, session: SessionDep, principal: PrincipalDep) -> dict:
    req = approvals.for_job(session, job_id)
    if not approvals.visible(principal, req):
        raise NotFound(f"job {job_id!r} has no approval request")
    return approvals.to_dict(req)


@router.post("/bulk-approve", response_model=BulkResult)
async def bulk_approve(body: BulkBody, state: StateDep, principal: ApproverDep, request: Request) -> dict:
    return await decide_many(state.db, state.temporal, principal, body, "approve", client_ip(request))


@router.post("/bulk-reject", response_model=BulkResult)
async def bulk_reject(body: BulkBody, state: StateDep, principal: ApproverDep, request: Request) -> dict:
    return await decide_many(state.db, state.temporal, principal, body, "reject", client_ip(request))


@router.get("/{request_id}", response_model=ApprovalRequest)
def get_request(request_id: str, session: SessionDep, principal: PrincipalDep) -> dict:
    req = approvals.get(session, request_id)
    if not approvals.visible(principal, req):
        raise NotFound(f"approval request {request_id!r} not found")
    return approvals.to_dict(req)


@router.post("/{request_id}/approve", response_model=ApprovalRequest)
async def approve(request_id: str, state: StateDep, principal: ApproverDep, request: Request,
                  body: DecisionBody | None = None) -> dict:
    comment = body.comment if body else None
    return await decide(state.db, state.temporal, principal, request_id, "approve", comment, client_ip(request))


@router.post("/{request_id}/reject", response_model=ApprovalRequest)
async def reject(request_id: str, state: StateDep, principal: ApproverDep, request: Request,
                 body: DecisionBody | None = None) -> dict:
    comment = (body.comment or body.reason) if body else None
    return await decide(state.db, state.temporal, principal, request_id, "reject", comment, client_ip(request))


@router.post("/{request_id}/cancel", response_model=ApprovalRequest)
async def cancel(request_id: str, state: StateDep, principal: Annotated[Principal, Depends(require("job.cancel.own"))],
                 request: Request, body: DecisionBody | None = None) -> dict:
    comment = body.comment if body else None
    return await decide(state.db, state.temporal, principal, request_id, "cancel", comment, client_ip(request))
