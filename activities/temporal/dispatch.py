"""Activities around a dispatch into the GPU namespace: open it, confirm an agent's claim, settle it.

All three run only for the job's own workflow run and decide from the database (``capacity.dispatches``,
``capacity.claims``); what the GPU plane reports is never taken as the outcome.
"""

from __future__ import annotations

from typing import Callable

from sqlmodel import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.capacity import claims, dispatches
from activities.errors import DomainError
from activities.jobs import jobs
from activities.temporal.binding import bound_job
from workflows.contracts import (
    ClaimCheck, ConfirmedClaim, DispatchOpening, DispatchTicket, SettledDispatch, SettleRequest,
)

ERR_DISPATCH_REFUSED = "DispatchRefused"


class DispatchActivities:
    def __init__(self, session_factory: Callable[[], Session], heartbeat_timeout_s: float) -> None:
        self._session = session_factory
        self._timeout = heartbeat_timeout_s

    @activity.defn(name="open_dispatch")
    def open_dispatch(self, opening: DispatchOpening) -> DispatchTicket:
        with self._session() as session:
            bound_job(session, opening.job_id)
            try:
                ticket = dispatches.open_dispatch(session, opening)
            except DomainError as exc:
                session.commit()  # the refusal's audit entry
                raise ApplicationError(exc.detail, type=ERR_DISPATCH_REFUSED, non_retryable=True) from None
            if opening.transition is not None:
                jobs.apply_transition(session, opening.transition)
            session.commit()
            return ticket

    @activity.defn(name="confirm_claim")
    def confirm_claim(self, check: ClaimCheck) -> ConfirmedClaim:
        with self._session() as session:
            bound_job(session, check.job_id)
            confirmed = claims.confirm(session, check)
            session.commit()
            return confirmed

    @activity.defn(name="settle_dispatch")
    def settle_dispatch(self, req: SettleRequest) -> SettledDispatch:
        with self._session() as session:
            bound_job(session, req.job_id)
            settled = dispatches.settle(session, req, self._timeout)
            session.commit()
            return settled
