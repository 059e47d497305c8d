"""The admission queue: order, positions and reasons, limits, priority overrides, cancel, and deciding a
queued job's approval (``queue.approve``)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from activities.errors import NotFound
from activities.capacity import admission, queue_view
from activities.jobs import jobs
from activities.identity.principals import Principal
from api import queue_changes
from api.approval_decisions import DecisionBody, decide, for_job
from api.queue_changes import ConcurrencyBody, PriorityBody
from api.paging import PageDep
from api.deps import PrincipalDep, SessionDep, StateDep, client_ip, require
from api.job_cancel import cancel_job
from api.schemas.approvals import ApprovalRequest
from api.schemas.jobs import CancelRequested
from api.schemas.queue import (Limits, LimitsRead, MyQueue, NotQueued, Position, PriorityChanged, QueuePage,
                               QueueStats)

router = APIRouter(prefix="/api/queue", tags=["queue"])
QueueAdminDep = Annotated[Principal, Depends(require("queue.manage"))]
QueueApproverDep = Annotated[Principal, Depends(require("queue.approve"))]


@router.get("", response_model=QueuePage)
def queue(session: SessionDep, principal: PrincipalDep, page: PageDep) -> dict:
    return queue_view.snapshot(session, None if principal.has("job.view.all") else principal.user_id, page)


@router.get("/me", response_model=MyQueue)
def my_queue(session: SessionDep, principal: PrincipalDep) -> dict:
    mine = queue_view.snapshot(session, principal.user_id)
    return {**mine, "waiting_count": len(mine["waiting"]), "running_count": len(mine["running"]),
            "waiting_for_agent_count": len(mine["waiting_for_agent"])}


@router.get("/stats", response_model=QueueStats)
def stats(session: SessionDep, principal: PrincipalDep) -> dict:
    """Everyone's counts with ``job.view.all``; otherwise the caller's own (the limits are shown to all)."""
    return queue_view.stats(session, None if principal.has("job.view.all") else principal.user_id)


@router.get("/position/{job_id}", response_model=Position | NotQueued)
def position(job_id: str, session: SessionDep, principal: PrincipalDep) -> dict:
    job = jobs.get(session, job_id)
    if not principal.may_see(job.owner_id):
        raise NotFound(f"job {job_id!r} not found")
    return queue_view.position(session, job)


@router.get("/concurrency", response_model=LimitsRead)
def get_concurrency(session: SessionDep, _: PrincipalDep) -> dict:
    qs = admission.settings(session)
    return {"max_concurrent": qs.max_concurrent, "user_max_concurrent": qs.user_max_concurrent,
            "updated_at": qs.updated_at, "updated_by": qs.updated_by}


@router.post("/concurrency", response_model=Limits)
async def set_concurrency(body: ConcurrencyBody, state: StateDep, principal: QueueAdminDep, request: Request) -> dict:
    return await queue_changes.set_concurrency(state, principal, body, client_ip(request))


@router.post("/{job_id}/priority", response_model=PriorityChanged)
async def set_priority(job_id: str, body: PriorityBody, state: StateDep, principal: QueueAdminDep,
                       request: Request) -> dict:
    return await queue_changes.set_priority(state, principal, job_id, body, client_ip(request))


@router.post("/{job_id}/approve", response_model=ApprovalRequest)
async def approve(job_id: str, state: StateDep, principal: QueueApproverDep, request: Request,
                  body: DecisionBody | None = None) -> dict:
    """Approve the job's pending approval request (the same checked decision as the approvals API)."""
    request_id = await asyncio.to_thread(for_job, state.db, job_id)
    comment = body.comment if body else None
    return await decide(state.db, state.temporal, principal, request_id, "approve", comment, client_ip(request),
                        channel="queue")


@router.post("/{job_id}/reject", response_model=ApprovalRequest)
async def reject(job_id: str, state: StateDep, principal: QueueApproverDep, request: Request,
                 body: DecisionBody | None = None) -> dict:
    request_id = await asyncio.to_thread(for_job, state.db, job_id)
    comment = (body.comment or body.reason) if body else None
    return await decide(state.db, state.temporal, principal, request_id, "reject", comment, client_ip(request),
                        channel="queue")


@router.post("/{job_id}/cancel", response_model=CancelRequested)
async def cancel(job_id: str, state: StateDep, principal: PrincipalDep, request: Request) -> dict:
    return await cancel_job(state, principal, job_id, client_ip(request))
