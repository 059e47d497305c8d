"""One person's view of approvals (``GET /api/approvals/me``) and the requests an "expire now" picks."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from activities.db.models import utcnow
from activities.db.models_approvals import ApprovalRequest
from activities.governance.approvals import to_dict
from activities.identity.permissions import LEVEL_PRIORITY
from activities.identity.principals import Principal, overrides_of
from activities.paging import PageRequest, keyset


def awaiting_me(session: Session, principal: Principal) -> int:
    """Pending requests of other people's jobs that ``principal`` may decide (``admin.approve`` and a
    level reaching each rule's ``required_level``, or the permission granted personally)."""
    if not principal.has("admin.approve"):
        return 0
    query = (select(func.count()).select_from(ApprovalRequest)
             .where(ApprovalRequest.status == "pending", ApprovalRequest.user_id != principal.user_id))
    if overrides_of(session, principal.user_id).get("admin.approve") is not True:
        reachable = [level for level, rank in LEVEL_PRIORITY.items() if rank <= principal.priority]
        query = query.where(col(ApprovalRequest.required_level).in_(reachable))
    return session.exec(query).one()


def mine(session: Session, principal: Principal, status: str | None, page: PageRequest) -> dict[str, Any]:
    """The caller's own requests (newest first, paged), what they may decide, and counts."""
    own = select(ApprovalRequest).where(ApprovalRequest.user_id == principal.user_id)
    pending_own = session.exec(select(func.count()).select_from(ApprovalRequest).where(
        ApprovalRequest.user_id == principal.user_id, ApprovalRequest.status == "pending")).one()
    if status:
        own = own.where(ApprovalRequest.status == status)
    found = keyset(session, own, [(col(ApprovalRequest.created_at), True), (col(ApprovalRequest.id), True)], page)
    return {"user_id": principal.user_id, "username": principal.username,
            "can_approve": principal.has("admin.approve"), "awaiting_my_decision": awaiting_me(session, principal),
            "my_pending": pending_own, "requests": [to_dict(r) for r in found.rows], **found.fields(),
            "limit": page.limit}


def overdue(session: Session, limit: int = 1000) -> list[str]:
    """Pending requests whose time is up (their workflow's timer should have ended them)."""
    query = (select(ApprovalRequest.id).where(ApprovalRequest.status == "pending",
                                              ApprovalRequest.expires_at <= utcnow())
             .order_by(col(ApprovalRequest.expires_at)).limit(limit))
    return list(session.exec(query))
