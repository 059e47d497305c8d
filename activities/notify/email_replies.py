"""What an approval reply e-mail is allowed to do, decided in one database transaction.

A reply counts only if: its Message-ID was never seen before, it carries a known reference token,
the token was sent to the sender's address, is unused and unexpired, the request is still pending,
the sender is still an eligible approver, and the first line reads as a clear decision. The token
is spent in the same transaction that records the reply, so a replayed message or a second reply
with the same reference changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlmodel import Session

from activities.db.models import User, as_utc, utcnow
from activities.db.models_approvals import ApprovalDecisionIntent, InboundEmail
from activities.notify.mail.reply_parser import ParsedReply
from activities.governance import approvals
from activities.audit.trail import audit
from workflows.contracts import ApprovalDecision


@dataclass(frozen=True)
class ReplyVerdict:
    action: Literal["deliver", "help", "refuse", "drop"]
    detail: str
    job_id: str | None = None
    decision: ApprovalDecision | None = None
    answer_to: str | None = None  # who gets the help/refusal e-mail (never a stranger)
    token: str | None = None


def judge(session: Session, reply: ParsedReply) -> ReplyVerdict:
    """Decide and record (status ``delivering`` for a decision still to be sent to the workflow)."""
    seen = session.get(InboundEmail, reply.message_id)
    if seen is not None:
        if seen.status == "delivering":  # stopped between claim and update: send the same update again
            return _redeliver(session, seen)
        return ReplyVerdict("drop", f"message {reply.message_id} was already handled ({seen.status})")
    if reply.is_auto_reply:
        return _record(session, reply, None, "ignored", "automatic reply", "drop")
    if reply.token is None:
        return _record(session, reply, None, "ignored", "no approval reference in the message", "drop")
    token = approvals.find_token(session, reply.token)
    if token is None:
        return _record(session, reply, None, "ignored", "unknown approval reference", "drop")
    req = approvals.get(session, token.request_id)
    if reply.sender != token.approver_email.lower():
        return _record(session, reply, req.id, "refused",
                       f"reply from {reply.sender}, but this reference was sent to another address", "drop")
    answer = token.approver_email
    if token.used_at is not None:
        return _record(session, reply, req.id, "refused", "this reference was already used", "refuse", answer)
    if req.status != "pending":
        return _record(session, reply, req.id, "refused", f"the request is already {req.status}", "refuse", answer)
    if as_utc(token.expires_at) <= utcnow():
        return _record(session, reply, req.id, "refused", "this reference has expired", "refuse", answer)
    approver = session.get(User, token.approver_id)
    if approver is None or not approvals.may_decide(session, approver, req):
        return _record(session, reply, req.id, "refused", "you are no longer an eligible approver for this request",
                       "refuse", answer)
    if reply.decision is None:
        verdict = _record(session, reply, req.id, "ignored", "no clear decision on the first line", "help", answer)
        return ReplyVerdict("help", verdict.detail, answer_to=answer, token=reply.token)
    token.used_at, token.used_message_id = utcnow(), reply.message_id
    session.add(token)
    row = InboundEmail(message_id=reply.message_id, sender=reply.sender, request_id=req.id, decision=reply.decision,
                       status="delivering", detail=reply.text or None)  # the comment, until delivered
    session.add(row)
    intent = approvals.record_intent(session, req, approver, reply.decision, "email", reply.text or None,
                                     intent_id=intent_id(reply.message_id))
    return ReplyVerdict("deliver", f"{reply.decision} by {approver.username}", job_id=req.job_id,
                        decision=approvals.decision_of(intent), answer_to=answer)


def intent_id(message_id: str) -> str:
    """The recorded decision (and Workflow Update) id of an e-mail reply: the same message is one decision."""
    return f"email:{message_id}"[:255]


def _redeliver(session: Session, seen: InboundEmail) -> ReplyVerdict:
    intent = session.get(ApprovalDecisionIntent, intent_id(seen.message_id))
    if intent is None:
        return ReplyVerdict("drop", "cannot redeliver: no decision was recorded for this message")
    return ReplyVerdict("deliver", "redelivery", job_id=intent.job_id, decision=approvals.decision_of(intent),
                        answer_to=seen.sender)


def _record(session: Session, reply: ParsedReply, request_id: str | None, status: str, detail: str,
            action: Literal["deliver", "help", "refuse", "drop"], answer_to: str | None = None) -> ReplyVerdict:
    session.add(InboundEmail(message_id=reply.message_id, sender=reply.sender or "", request_id=request_id,
                             decision=reply.decision, status=status, detail=detail, finished_at=utcnow()))
    if status == "refused":
        audit(session, reply.sender or "unknown", "approval.email_refused", "approval_request", request_id,
              {"message_id": reply.message_id, "reason": detail, "channel": "email"})
    return ReplyVerdict(action, detail, answer_to=answer_to)


def finish(session: Session, message_id: str, status: str, detail: str) -> None:
    row = session.get(InboundEmail, message_id)
    if row is not None:
        row.status, row.detail, row.finished_at = status, detail, utcnow()
        session.add(row)
        if status == "refused":
            audit(session, row.sender, "approval.email_refused", "approval_request", row.request_id,
                  {"message_id": message_id, "reason": detail, "channel": "email"})
