"""The audit log (permission ``admin.audit``): GET /api/audit with filters, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from activities.audit import reads
from activities.identity.principals import Principal
from api.deps import SessionDep, require

router = APIRouter(prefix="/api/audit", tags=["audit"])
AuditorDep = Annotated[Principal, Depends(require("admin.audit"))]


@router.get("")
def list_audit(session: SessionDep, _: AuditorDep, action: str | None = None, actor: str | None = None,
               target_type: str | None = None, target_id: str | None = None, since: datetime | None = None,
               until: datetime | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
               offset: Annotated[int, Query(ge=0, le=10**9)] = 0) -> dict:
    rows, total = reads.list_entries(session, action, actor, target_type, target_id, since, until, limit, offset)
    return {"entries": [reads.to_dict(e) for e in rows], "total": total}
