"""Approval activities: open and close a job's approval request, and e-mail approvers and submitters."""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from sqlmodel import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.db.models import User
from activities.notify.mail.messages import approval_request_email, notice_email
from activities.notify.mail.smtp_send import MailDeliveryError, send_message
from activities.governance import approvals
from activities.notify import channels
from activities.observability.log_context import LogContext
from activities.secrets.credential_crypto import CredentialCipher
from activities.settings import Settings
from activities.temporal.binding import bound_job, refuse
from workflows.contracts import (
    ERR_APPROVAL_FORBIDDEN, ERR_APPROVAL_NOT_PENDING, ApprovalNotice, ApprovalOpened, ApprovalOutcome,
    ApprovalRequirement, DecisionCheck, DecisionVerdict, OpenApproval,
)

log = logging.getLogger(__name__)


class ApprovalActivities:
    def __init__(self, session_factory: Callable[[], Session], cipher: CredentialCipher, settings: Settings) -> None:
        self._session = session_factory
        self._cipher = cipher
        self._settings = settings

    @activity.defn(name="open_approval")
    def open_approval(self, req: OpenApproval) -> ApprovalOpened:
        """Open the request the job's evaluation found necessary (its rule, level and timeout come from
        the database; jobs evaluated before the evaluation recorded them use the request's)."""
        with self._session() as session:
            job = bound_job(session, req.job_id)
            if job.evaluated_at is not None:
                if not job.approval_requirement:
                    refuse(session, job.id, f"job {job.id} needs no approval")
                req = req.model_copy(update={"owner_id": job.owner_id, "owner_name": job.owner_name,
                                             "config_name": job.config_name,
                                             "requirement": ApprovalRequirement(**job.approval_requirement)})
            row = approvals.open_request(session, req)
            session.commit()
            return ApprovalOpened(request_id=row.id, expires_at=row.expires_at)

    @activity.defn(name="close_approval")
    def close_approval(self, outcome: ApprovalOutcome) -> None:
        with self._session() as session:
            bound_job(session, outcome.job_id)
            if approvals.get(session, outcome.request_id).job_id != outcome.job_id:
                refuse(session, outcome.job_id, f"approval request {outcome.request_id} is not this job's")
            approvals.close_request(session, outcome)
            session.commit()

    @activity.defn(name="check_approval_decision")
    def check_approval_decision(self, check: DecisionCheck) -> DecisionVerdict:
        """Is this update a decision a channel recorded, and may its actor still make it? Spends it."""
        with LogContext(job_id=check.job_id, step="approval"), self._session() as session:
            bound_job(session, check.job_id)
            kind, message = approvals.check_decision(session, check.request_id, check.job_id, check.decision)
            session.commit()
            if kind is None:
                log.info("approval %s of job %s: %s by %s", check.request_id, check.job_id, check.decision, message)
                return DecisionVerdict(allowed=True, actor_name=message)
            log.info("approval %s of job %s: %s refused (%s)", check.request_id, check.job_id, check.decision, message)
            error = ERR_APPROVAL_FORBIDDEN if kind == "forbidden" else ERR_APPROVAL_NOT_PENDING
            return DecisionVerdict(allowed=False, error_type=error, message=message)

    @activity.defn(name="send_approval_notice")
    async def send_approval_notice(self, notice: ApprovalNotice) -> int:
        """E-mail every eligible approver a personal reply token ("required"), or tell the submitter
        (and, on expiry, the approvers) how it ended. Returns how many messages went out. SMTP errors
        fail the attempt and Temporal retries; approvers already mailed are not mailed again."""
        await asyncio.to_thread(self._bound_request, notice.request_id)
        transport = await asyncio.to_thread(self._transport)
        if transport is None:
            log.info("approval %s: no enabled e-mail channel, nobody mailed", notice.request_id)
            return 0
        if notice.kind == "required":
            return await self._mail_approvers(notice.request_id, transport)
        return await self._mail_outcome(notice, transport)

    def _bound_request(self, request_id: str) -> None:
        """Only the workflow of the request's job sends its e-mails."""
        with self._session() as session:
            bound_job(session, approvals.get(session, request_id).job_id)

    def _transport(self) -> channels.EmailTransport | None:
        with self._session() as session:
            return channels.email_transport(session, self._cipher, self._settings)

    async def _mail_approvers(self, request_id: str, transport: channels.EmailTransport) -> int:
        sent = 0
        for approver_id in await asyncio.to_thread(self._unmailed_approvers, request_id):
            built = await asyncio.to_thread(self._approval_message, request_id, approver_id)
            if built is None:
                continue
            token, message = built
            await self._send(transport, message)
            await asyncio.to_thread(self._mark_sent, token)
            sent += 1
            activity.heartbeat(sent)
        return sent

    def _unmailed_approvers(self, request_id: str) -> list[str]:
        with self._session() as session:
            req = approvals.get(session, request_id)
            if req.status != "pending":
                return []
            return [u.id for u in approvals.eligible_approvers(session, req) if not approvals.token_sent_to(session, req, u)]

    def _approval_message(self, request_id: str, approver_id: str):
        with self._session() as session:
            req = approvals.get(session, request_id)
            approver = session.get(User, approver_id)
            if approver is None or not approver.email or req.status != "pending":
                return None
            token = approvals.issue_token(session, req, approver, self._settings.approval_token_hours)
            session.commit()
            message = approval_request_email(
                to=approver.email, token=token, job_id=req.job_id, config_name=req.config_name, owner=req.username,
                rule_name=req.rule_name, reason=req.reason, cost_estimate_usd=req.cost_estimate_usd,
                expires_at=req.expires_at, base_url=self._settings.public_url)
            return token, message

    def _mark_sent(self, token: str) -> None:
        with self._session() as session:
            approvals.mark_sent(session, token)
            session.commit()

    async def _mail_outcome(self, notice: ApprovalNotice, transport: channels.EmailTransport) -> int:
        recipients, req = await asyncio.to_thread(self._outcome_recipients, notice)
        for address in recipients:
            await self._send(transport, notice_email(
                to=address, kind=notice.kind, job_id=req["job_id"], config_name=req["config_name"],
                owner=req["username"], actor=req["decided_by"], comment=req["comment"], reason=req["reason"]))
        return len(recipients)

    def _outcome_recipients(self, notice: ApprovalNotice) -> tuple[list[str], dict]:
        with self._session() as session:
            req = approvals.get(session, notice.request_id)
            addresses: list[str] = []
            submitter = session.get(User, req.user_id)
            if submitter is not None and submitter.email and submitter.is_active:
                addresses.append(submitter.email)
            if notice.kind == "expired":
                addresses += [u.email for u in approvals.eligible_approvers(session, req) if u.email]
            return sorted(set(addresses)), approvals.to_dict(req)

    @staticmethod
    async def _send(transport: channels.EmailTransport, message) -> None:
        try:
            await send_message(transport.smtp, message)
        except MailDeliveryError as exc:
            raise ApplicationError(f"SMTP delivery to {message['To']} failed: {exc}", type="MailDeliveryError") from exc
