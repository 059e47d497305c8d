"""``GET /api/approvals/me``: the caller's own approval requests and how many wait for their decision."""

from __future__ import annotations

from fastapi import APIRouter

from activities.governance import approvals_overview
from activities.paging import PageRequest
from api.deps import PrincipalDep, SessionDep
from api.paging import PageDep
from api.routers.approvals import RequestStatus
from api.schemas.approvals import MyApprovals

router = APIRouter(tags=["approvals"])


@router.get("/api/approvals/me", response_model=MyApprovals)
def my_approvals(session: SessionDep, principal: PrincipalDep, status: RequestStatus | None = None,
                 page: PageDep = PageRequest()) -> dict:
    return approvals_overview.mine(session, principal, status, page)
