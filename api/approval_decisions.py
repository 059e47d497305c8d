"""Deciding an approval request from REST: a Workflow Update on the job's workflow.

The workflow's validator is the authority (state, self-approval, approver level); its refusals come
back as typed errors and become 409/403 here. A request whose workflow has ended answers 409 with
the state recorded in the database.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from pydantic import ConfigDict, Field
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.request_body import RequestBody
from activities.errors import Conflict, DomainError, Forbidden, NotFound
from activities.runtime import Database
from activities.governance import approvals
from activities.audit.trail import audit
from activities.identity import users
from activities.identity.principals import Principal
from activities.temporal.approval_update import send_decision
from workflows.contracts import ERR_APPROVAL_FORBIDDEN, ApprovalDecision

BULK_PARALLELISM = 8


class DecisionBody(RequestBody):
    model_config = ConfigDict(extra="forbid")
    comment: str | None = Field(None, max_length=2000)
    reason: str | None = Field(None, max_length=2000)  # accepted as a synonym of comment on reject


class BulkBody(RequestBody):
    model_config = ConfigDict(extra="forbid")
    request_ids: list[str] = Field(min_length=1, max_length=200)
    comment: str | None = Field(None, max_length=2000)


async def decide(db: Database, client: Client, principal: Principal, request_id: str,
                 decision: Literal["approve", "reject", "cancel", "expire"], comment: str | None,
                 ip: str | None, channel: Literal["rest", "queue"] = "rest") -> dict:
    """Check the caller may decide (403/409 at once), record the decision, then ask the job's workflow
    to apply it: its update handler checks the recorded decision against the database again."""
    def prepare() -> tuple[str, ApprovalDecision]:
        with db.session() as session:
            req = approvals.get(session, request_id)
            if not approvals.visible(principal, req, channel):
                raise NotFound(f"approval request {request_id!r} not found")
            user = users.find(session, principal.user_id)
            if user is None:
                raise Forbidden("only user accounts can decide approval requests")
            if req.status != "pending":
                raise Conflict(f"approval request {req.id} is already {req.status}")
            why = approvals.refusal(session, req, user, decision, channel)
            if why is not None:
                _audit_refusal(session, principal, request_id, decision, why, ip, channel)
                session.commit()
                raise Forbidden(why)
            intent = approvals.record_intent(session, req, user, decision, channel, comment)
            session.commit()
            return req.job_id, approvals.decision_of(intent)

    job_id, update = await asyncio.to_thread(prepare)  # never wait for SQLite's lock on the event loop
    try:
        await send_decision(client, job_id, update)
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        message = cause.message if isinstance(cause, ApplicationError) else str(exc)
        await asyncio.to_thread(_audit_refusal_tx, db, principal, request_id, decision, message, ip, channel)
        if isinstance(cause, ApplicationError) and cause.type == ERR_APPROVAL_FORBIDDEN:
            raise Forbidden(message) from None
        raise Conflict(message) from None
    except RPCError as exc:
        if exc.status not in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            raise
        state = await asyncio.to_thread(_status, db, request_id)
        raise Conflict(f"approval request {request_id} is already {state} (the job has ended)") from None
    return await asyncio.to_thread(_read, db, request_id)


def for_job(db: Database, job_id: str) -> str:
    """The approval request of a job (the queue routes decide by job id)."""
    with db.session() as session:
        return approvals.for_job(session, job_id).id


def _read(db: Database, request_id: str) -> dict:
    with db.session() as session:
        return approvals.to_dict(approvals.get(session, request_id))


def _status(db: Database, request_id: str) -> str:
    with db.session() as session:
        return approvals.get(session, request_id).status


def _audit_refusal(session, principal: Principal, request_id: str, decision: str, why: str, ip: str | None,
                   channel: str) -> None:
    audit(session, principal.username, "approval.decision_refused", "approval_request", request_id,
          {"decision": decision, "reason": why, "channel": channel}, ip=ip)


def _audit_refusal_tx(db: Database, principal: Principal, request_id: str, decision: str, why: str,
                      ip: str | None, channel: str) -> None:
    with db.session() as session:
        _audit_refusal(session, principal, request_id, decision, why, ip, channel)
        session.commit()


async def decide_many(db: Database, client: Client, principal: Principal, body: BulkBody,
                      decision: Literal["approve", "reject", "expire"], ip: str | None) -> dict:
    gate = asyncio.Semaphore(BULK_PARALLELISM)

    async def one(request_id: str) -> dict:
        async with gate:
            try:
                req = await decide(db, client, principal, request_id, decision, body.comment, ip)
                return {"request_id": request_id, "ok": True, "status": req["status"]}
            except DomainError as exc:
                return {"request_id": request_id, "ok": False, "status_code": exc.status_code, "detail": exc.detail}

    results = await asyncio.gather(*(one(rid) for rid in dict.fromkeys(body.request_ids)))
    done = sum(1 for r in results if r["ok"])
    return {"results": results, "succeeded": done, "failed": len(results) - done}
