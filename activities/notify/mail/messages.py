"""Outgoing approval e-mails: the request with its reply token, help, outcome notices, refusals.

Builders only: each returns an ``EmailMessage`` (plain-text UTF-8 body) with To and Subject set
and marked ``Auto-Submitted: auto-generated`` (and ``X-Auto-Response-Suppress: All``) so that
vacation responders stay quiet. From, Date and Message-ID are left to the sending side.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from email.message import EmailMessage
from typing import Literal

from activities.notify.mail.reply_parser import REF_RE

NoticeKind = Literal["expired", "rejected", "approved", "cancelled"]
SUBJECT_PREFIX = "[SimpleTuner]"
_REPLY_PREFIX_RE = re.compile(r"^\s*(?:(?:re|aw|sv|antw)\s*(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE)

_HOW_TO_ANSWER = (
    "How to answer:\n"
    "  Reply to this e-mail with APPROVE or REJECT on the first line.\n"
    "  You may add a comment on the lines after it, e.g. why you rejected.\n"
    "  LGTM, yes, ok and +1 count as APPROVE; no, deny and -1 count as REJECT.\n"
    "  A question (\"approve?\") or a line with both is not read as a decision.\n"
)


def _one_line(value: object) -> str:
    """A value safe for a header or a one-line field: whitespace (incl. CR/LF) collapsed."""
    return re.sub(r"\s+", " ", str(value)).strip()


def _utc_iso(when: datetime) -> str:
    """UTC ISO-8601 with a Z; a naive datetime is taken to be UTC already."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ref(token: str) -> str:
    return f"[ref:{token}]"


def _reply_subject(original_subject: str) -> str:
    """``Re: <subject>`` with any existing Re:/AW:/SV: prefixes folded into one."""
    return "Re: " + _REPLY_PREFIX_RE.sub("", _one_line(original_subject))


def _build(to: str, subject: str, body: str, in_reply_to: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["To"] = _one_line(to)
    msg["Subject"] = _one_line(subject)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    if in_reply_to and not in_reply_to.startswith("sha256:"):  # skip parse_reply's synthetic ids
        ref = "<" + _one_line(in_reply_to).strip("<>") + ">"
        msg["In-Reply-To"] = ref
        msg["References"] = ref
    msg.set_content(body if body.endswith("\n") else body + "\n", charset="utf-8")
    return msg


def approval_request_email(to: str, token: str, job_id: str, config_name: str, owner: str,
                           rule_name: str, reason: str, cost_estimate_usd: float | None,
                           expires_at: datetime, base_url: str | None) -> EmailMessage:
    """The request sent to one eligible approver, carrying their personal single-use token."""
    config, who, job = _one_line(config_name), _one_line(owner), _one_line(job_id)
    subject = f"{SUBJECT_PREFIX} Approval needed: {config} by {who} (job {job}) {_ref(token)}"
    cost = "unknown" if cost_estimate_usd is None else f"${cost_estimate_usd:,.2f}"
    expires = _utc_iso(expires_at)
    body = (
        "Hello,\n\n"
        "A training job needs your approval before it can run.\n\n"
        f"  Job:            {job}\n"
        f"  Config:         {config}\n"
        f"  Submitted by:   {who}\n"
        f"  Estimated cost: {cost}\n"
        f"  Expires:        {expires} (UTC)\n\n"
        f"Why it needs approval (rule \"{_one_line(rule_name)}\"):\n"
        f"  {reason.strip() or '(no reason given)'}\n\n"
        f"{_HOW_TO_ANSWER}\n"
        f"If nobody decides by {expires}, the request expires\nand the job does not run.\n\n"
        "The reference below is personal and single-use: only a reply from this\n"
        "address counts, only the first decision is applied, and forwarding this\n"
        "e-mail does not delegate it. Keep the reference in the subject when you\nreply.\n\n"
        f"{_ref(token)}\n"
    )
    if base_url:
        pending = f"{base_url.rstrip('/')}/api/approvals/requests?status=pending"
        body += f"\nPending requests can also be reviewed at:\n  {pending}\n"
    return _build(to, subject, body)


def help_email(to: str, original_subject: str, token: str | None,
               in_reply_to: str | None) -> EmailMessage:
    """Answer to a reply without a readable decision; keeps the reference so the next reply works."""
    subject = _reply_subject(original_subject)
    if token:
        subject = f"{REF_RE.sub('', subject).strip()} {_ref(token)}"
    body = (
        "Your reply was received, but no decision could be read from it.\n\n"
        f"{_HOW_TO_ANSWER}"
    )
    if token:
        body += f"\nPlease reply to this e-mail and keep the reference in the subject:\n{_ref(token)}\n"
    else:
        body += "\nNo request reference was found; please reply to the original approval e-mail.\n"
    return _build(to, subject, body, in_reply_to)


_NOTICE_TEXT: dict[str, str] = {
    "approved": "was approved{by}. The job will now be scheduled.",
    "rejected": "was rejected{by}. The job will not run.",
    "expired": "expired without a decision. The job will not run.",
    "cancelled": "was cancelled{by}. No decision is needed any more.",
}


def notice_email(to: str, kind: NoticeKind, job_id: str, config_name: str, owner: str,
                 actor: str | None, comment: str | None, reason: str | None) -> EmailMessage:
    """Tell the submitter / approvers how an approval request ended."""
    if kind not in _NOTICE_TEXT:
        raise ValueError(f"unknown notice kind {kind!r}")
    job = _one_line(job_id)
    by = f" by {_one_line(actor)}" if actor else ""
    body = (
        f"The approval request for job {job} ({_one_line(config_name)} by {_one_line(owner)})\n"
        f"{_NOTICE_TEXT[kind].format(by=by)}\n"
    )
    if reason:
        body += f"\nReason: {reason.strip()}\n"
    if comment:
        body += f"\nComment{by}:\n{comment.strip()}\n"
    body += "\nThis is an automatic notice.\n"
    return _build(to, f"{SUBJECT_PREFIX} Job {job} approval {kind}", body)


def refusal_email(to: str, original_subject: str, reason: str,
                  in_reply_to: str | None) -> EmailMessage:
    """Short answer when a reply could not be applied (token used or expired, sender not an
    eligible approver, request already decided). The reference is removed from the subject, so a
    reply to the refusal cannot act on the request again."""
    subject = REF_RE.sub("", _reply_subject(original_subject)).strip()
    body = (
        "Your reply could not be applied, and nothing was changed.\n\n"
        f"Reason: {_one_line(reason)}\n\n"
        "This is an automatic answer.\n"
    )
    return _build(to, re.sub(r"\s{2,}", " ", subject), body, in_reply_to)
