"""The audit log (permission ``admin.audit``): GET /api/audit with filters, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends

from activities.audit import reads
from activities.identity.principals import Principal
from activities.paging import PageRequest
from api.deps import SessionDep, require
from api.paging import PageDep
from api.schemas.audit import AuditPage

router = APIRouter(prefix="/api/audit", tags=["audit"])
AuditorDep = Annotated[Principal, Depends(require("admin.audit"))]


@router.get("", response_model=AuditPage)
def list_audit(session: SessionDep, _: AuditorDep, action: str | None = None, actor: str | None = None,
               target_type: str | None = None, target_id: str | None = None, since: datetime | None = None,
               until: datetime | None = None, page: PageDep = PageRequest()) -> dict:
    found = reads.list_entries(session, action, actor, target_type, target_id, since, until, page)
    return {"entries": [reads.to_dict(e) for e in found.rows], **found.fields()}
