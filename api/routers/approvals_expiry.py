"""``POST /api/approvals/expire``: an approver's "expire now".

Without a body it expires every pending request whose time is up (their workflows' timers normally
do that themselves; this catches any left behind). With ``request_ids`` it expires those requests at
once (up to 200 per call). Each expiry is recorded like any decision and delivered to the job's workflow, which checks it
against the database and ends the job cancelled with the reason.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import ConfigDict, Field

from activities.request_body import RequestBody
from activities.governance import approvals_overview
from activities.identity.principals import Principal
from api.approval_decisions import BulkBody, decide_many
from api.deps import StateDep, client_ip, require
from api.schemas.approvals import BulkResult

router = APIRouter(tags=["approvals"])
ApproverDep = Annotated[Principal, Depends(require("admin.approve"))]


class ExpireBody(RequestBody):
    model_config = ConfigDict(extra="forbid")
    request_ids: list[str] | None = Field(None, min_length=1, max_length=200)
    comment: str | None = Field(None, max_length=2000)


@router.post("/api/approvals/expire", response_model=BulkResult)
async def expire(state: StateDep, principal: ApproverDep, request: Request, body: ExpireBody | None = None) -> dict:
    ids = body.request_ids if body and body.request_ids else None
    if ids is None:
        def overdue() -> list[str]:
            with state.db.read_session() as session:
                return approvals_overview.overdue(session, limit=200)  # a bulk call decides up to 200
        ids = await asyncio.to_thread(overdue)
    if not ids:
        return {"results": [], "succeeded": 0, "failed": 0}
    bulk = BulkBody(request_ids=ids, comment=body.comment if body else None)
    return await decide_many(state.db, state.temporal, principal, bulk, "expire", client_ip(request))
