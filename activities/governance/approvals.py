"""Approval requests: the read model of each job's approval wait, its approvers and reply tokens.

The job's workflow is the authority on a request's state (it holds the wait, the timer and the
validated decision); these functions write what it decided, with the event and audit entry in the
same transaction, and answer the REST reads.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from activities.paging import Page, PageRequest, keyset
from activities.db.models import User, UserLevel, utcnow
from activities.db.models_approvals import ApprovalDecisionIntent, ApprovalRequest, ApprovalToken
from activities.errors import NotFound
from activities.audit.trail import audit, emit_event
from activities.identity.permissions import LEVEL_PRIORITY, effective_permissions
from activities.identity.principals import Principal, levels_of, overrides_of
from activities.secrets.tokens import hash_token, new_id, reply_token
from workflows.contracts import ApprovalDecision, ApprovalOutcome, OpenApproval, approver_eligible

EVENT_FOR_OUTCOME = {"approved": "approval.granted", "rejected": "approval.rejected",
                     "expired": "approval.expired", "cancelled": "approval.cancelled"}


def to_dict(req: ApprovalRequest) -> dict[str, Any]:
    return {"id": req.id, "job_id": req.job_id, "user_id": req.user_id, "username": req.username,
            "config_name": req.config_name, "rule_id": req.rule_id, "rule_name": req.rule_name,
            "reason": req.reason, "required_level": req.required_level, "cost_estimate_usd": req.cost_estimate_usd,
            "status": req.status, "created_at": req.created_at, "expires_at": req.expires_at,
            "decided_at": req.decided_at, "decided_by": req.decided_by, "channel": req.channel,
            "comment": req.comment}


def get(session: Session, request_id: str) -> ApprovalRequest:
    req = session.get(ApprovalRequest, request_id)
    if req is None:
        raise NotFound(f"approval request {request_id!r} not found")
    return req


def for_job(session: Session, job_id: str) -> ApprovalRequest:
    req = session.exec(select(ApprovalRequest).where(ApprovalRequest.job_id == job_id)).first()
    if req is None:
        raise NotFound(f"job {job_id!r} has no approval request")
    return req


def visible(principal: Principal, req: ApprovalRequest, channel: str = "rest") -> bool:
    """Approvers see every request (through the queue routes: holders of ``queue.approve``);
    everybody else only the requests of their own jobs."""
    approver = principal.has("queue.approve" if channel == "queue" else "admin.approve")
    return approver or req.user_id == principal.user_id


def list_requests(session: Session, principal: Principal, status: str | None = None, job_id: str | None = None,
                  user: str | None = None, page: PageRequest = PageRequest(),
                  decided_only: bool = False) -> Page[ApprovalRequest]:
    query = select(ApprovalRequest)
    if not principal.has("admin.approve"):
        query = query.where(ApprovalRequest.user_id == principal.user_id)
    if status:
        query = query.where(ApprovalRequest.status == status)
    if decided_only:
        query = query.where(ApprovalRequest.status != "pending")
    if job_id:
        query = query.where(ApprovalRequest.job_id == job_id)
    if user:
        query = query.where((ApprovalRequest.username == user) | (ApprovalRequest.user_id == user))
    return keyset(session, query, [(col(ApprovalRequest.created_at), True), (col(ApprovalRequest.id), True)], page)


def open_request(session: Session, req: OpenApproval) -> ApprovalRequest:
    """Create the job's request (once: a retried activity finds the existing one)."""
    existing = session.exec(select(ApprovalRequest).where(ApprovalRequest.job_id == req.job_id)).first()
    if existing is not None:
        return existing
    need = req.requirement
    now = utcnow()
    row = ApprovalRequest(id=new_id("apr"), job_id=req.job_id, user_id=req.owner_id, username=req.owner_name,
                          config_name=req.config_name, rule_id=need.rule_id, rule_name=need.rule_name,
                          reason=need.reason, required_level=need.required_level,
                          cost_estimate_usd=need.cost_estimate_usd, created_at=now,
                          expires_at=now + timedelta(seconds=need.timeout_seconds))
    session.add(row)
    emit_event(session, "approval.required", req.job_id, "pending_approval",
               {"request_id": row.id, "rule": need.rule_name, "reason": need.reason,
                "required_level": need.required_level})
    audit(session, "system:workflow", "approval.required", "approval_request", row.id,
          {"job_id": req.job_id, "rule": need.rule_name, "reason": need.reason})
    return row


def close_request(session: Session, outcome: ApprovalOutcome) -> ApprovalRequest:
    """Write the workflow's decision; writing the same outcome again changes nothing."""
    row = get(session, outcome.request_id)
    if row.status != "pending":
        return row
    row.status, row.decided_at = outcome.status, utcnow()
    row.decided_by, row.decided_by_id = outcome.actor_name, outcome.actor_id
    row.channel, row.comment = outcome.channel, outcome.comment
    session.add(row)
    details = {"request_id": row.id, "approver": outcome.actor_name, "channel": outcome.channel,
               "comment": outcome.comment}
    emit_event(session, EVENT_FOR_OUTCOME[outcome.status], row.job_id, None,
               {k: v for k, v in details.items() if v is not None})
    audit(session, outcome.actor_name or "system:workflow", EVENT_FOR_OUTCOME[outcome.status], "approval_request",
          row.id, {"job_id": row.job_id, "channel": outcome.channel, "comment": outcome.comment})
    for token in session.exec(select(ApprovalToken).where(ApprovalToken.request_id == row.id,
                                                          col(ApprovalToken.used_at).is_(None))):
        token.expires_at = min(token.expires_at, row.decided_at)  # a closed request's tokens end with it
        session.add(token)
    return row


# ---- who may decide ----------------------------------------------------------------------------

def refusal(session: Session, req: ApprovalRequest, user: User | None, decision: str, channel: str) -> str | None:
    """Why ``user`` may not ``decision`` the request through ``channel`` (from the database), or None.

    Approving or rejecting needs ``admin.approve`` (``queue.approve`` through the queue routes), never
    one's own job, and a level at least the rule's ``required_level`` unless that permission was
    granted to the user personally. Cancelling is for the submitter or holders of ``job.cancel.all``.
    Expiring early ("expire now") is for those who could approve it, their own jobs included."""
    if user is None or not user.is_active:
        return "the deciding account is unknown or disabled"
    levels = levels_of(session, user.id)
    overrides = overrides_of(session, user.id)
    permissions = effective_permissions(levels, overrides)
    if decision == "cancel":
        if user.id == req.user_id or "job.cancel.all" in permissions:
            return None
        return "only the submitter or someone who may cancel any job can cancel this request"
    if user.id == req.user_id and decision != "expire":
        return "nobody approves or rejects their own job"
    permission = "queue.approve" if channel == "queue" else "admin.approve"
    level = max((LEVEL_PRIORITY.get(lv, 0) for lv in levels), default=0)
    if not approver_eligible(req.required_level, level, permission in permissions, overrides.get(permission) is True):
        return (f"{user.username} may not decide this request: it needs {permission} and the level "
                f"{req.required_level!r} or higher")
    return None


def may_decide(session: Session, user: User, req: ApprovalRequest) -> bool:
    return refusal(session, req, user, "approve", "rest") is None


def record_intent(session: Session, req: ApprovalRequest, user: User, decision: str, channel: str,
                  comment: str | None, intent_id: str | None = None) -> ApprovalDecisionIntent:
    """Record a decision an authenticated channel accepted, for the job's workflow to check and spend."""
    intent = ApprovalDecisionIntent(id=intent_id or new_id("apd"), request_id=req.id, job_id=req.job_id,
                                    actor_id=user.id, actor_name=user.username, decision=decision, channel=channel,
                                    comment=comment)
    session.add(intent)
    return intent


def decision_of(intent: ApprovalDecisionIntent) -> ApprovalDecision:
    """The Workflow Update that asks the job's workflow to apply a recorded decision."""
    return ApprovalDecision(decision=intent.decision, actor_id=intent.actor_id, actor_name=intent.actor_name,
                            channel=intent.channel, comment=intent.comment, message_id=intent.id)


def check_decision(session: Session, request_id: str, job_id: str, d: ApprovalDecision) -> tuple[str | None, str | None]:
    """The workflow's check of an update: the decision must be one a channel recorded (same request,
    actor and decision; not spent before) and its actor must still be allowed to make it. Spends the
    record. Returns (kind of refusal: "forbidden" | "not_pending" | None, message); a refusal is audited."""
    req = session.get(ApprovalRequest, request_id)
    if req is None or req.job_id != job_id:
        return _refuse(session, request_id, d, "forbidden", "no such approval request for this job")
    intent = session.get(ApprovalDecisionIntent, d.message_id) if d.message_id else None
    if (intent is None or intent.request_id != req.id or intent.actor_id != d.actor_id
            or intent.decision != d.decision or intent.channel != d.channel):
        return _refuse(session, req.id, d, "forbidden",
                       "this decision was not recorded by the API or the mailbox: refused")
    if intent.used_at is not None:
        return _refuse(session, req.id, d, "not_pending", f"decision {intent.id} was already applied")
    if req.status != "pending":
        return _refuse(session, req.id, d, "not_pending", f"approval request {req.id} is already {req.status}")
    why = refusal(session, req, session.get(User, intent.actor_id), intent.decision, intent.channel)
    if why is not None:
        return _refuse(session, req.id, d, "forbidden", why)
    intent.used_at = utcnow()
    session.add(intent)
    return None, intent.actor_name


def _refuse(session: Session, request_id: str, d: ApprovalDecision, kind: str, why: str) -> tuple[str, str]:
    audit(session, d.actor_name or "unknown", "approval.decision_refused", "approval_request", request_id,
          {"decision": d.decision, "reason": why, "channel": d.channel, "claimed_actor_id": d.actor_id,
           "decision_id": d.message_id})
    return kind, why


def eligible_approvers(session: Session, req: ApprovalRequest) -> list[User]:
    """Active users with an e-mail address who may decide this request (never the submitter)."""
    candidates = session.exec(select(User).where(User.is_active == True, col(User.email).is_not(None),  # noqa: E712
                                                 User.id != req.user_id)
                              .join(UserLevel, UserLevel.user_id == User.id).distinct())
    return [user for user in candidates if may_decide(session, user, req)]


# ---- reply tokens ------------------------------------------------------------------------------

def issue_token(session: Session, req: ApprovalRequest, approver: User, hours: float) -> str:
    """A new single-use token for this approver (an unsent earlier one is replaced)."""
    for old in session.exec(select(ApprovalToken).where(ApprovalToken.request_id == req.id,
                                                        ApprovalToken.approver_id == approver.id,
                                                        col(ApprovalToken.sent_at).is_(None))):
        session.delete(old)
    token = reply_token()
    session.add(ApprovalToken(id=new_id("apt"), request_id=req.id, approver_id=approver.id,
                              approver_email=(approver.email or "").lower(), token_hash=hash_token(token),
                              expires_at=min(utcnow() + timedelta(hours=hours), req.expires_at)))
    return token


def token_sent_to(session: Session, req: ApprovalRequest, approver: User) -> bool:
    return session.exec(select(ApprovalToken.id).where(ApprovalToken.request_id == req.id,
                                                       ApprovalToken.approver_id == approver.id,
                                                       col(ApprovalToken.sent_at).is_not(None))).first() is not None


def mark_sent(session: Session, token: str) -> None:
    row = session.exec(select(ApprovalToken).where(ApprovalToken.token_hash == hash_token(token))).one()
    row.sent_at = utcnow()
    session.add(row)


def find_token(session: Session, token: str) -> ApprovalToken | None:
    return session.exec(select(ApprovalToken).where(ApprovalToken.token_hash == hash_token(token))).first()


def pending_count(session: Session, principal: Principal) -> int:
    query = select(func.count()).select_from(ApprovalRequest).where(ApprovalRequest.status == "pending")
    if not principal.has("admin.approve"):
        query = query.where(ApprovalRequest.user_id == principal.user_id)
    return session.exec(query).one()
