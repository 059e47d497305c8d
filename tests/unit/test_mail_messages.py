"""Outgoing approval e-mails: headers, body contents, and that replies to them parse back."""

from __future__ import annotations

import email
from datetime import datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage

import pytest

from activities.notify.mail.messages import (
    approval_request_email, help_email, notice_email, refusal_email,
)
from activities.notify.mail.reply_parser import parse_reply

TOKEN = "k3J_9-aZ" * 4
EXPIRES = datetime(2026, 1, 2, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))


def _roundtrip(msg: EmailMessage) -> email.message.Message:
    return email.message_from_bytes(msg.as_bytes(), policy=policy.default)


def _body(msg: email.message.Message) -> str:
    return msg.get_body(("plain",)).get_content()


def _request(**kw) -> EmailMessage:
    args = dict(to="carol@example.com", token=TOKEN, job_id="job-42", config_name="sdxl-lora",
                owner="alice", rule_name="big-jobs", reason="Estimated cost above $100.",
                cost_estimate_usd=1234.5, expires_at=EXPIRES, base_url="https://tuner.example.com/")
    args.update(kw)
    return approval_request_email(**args)


def _reply_to(original: email.message.Message, body: str, sender: str = "carol@example.com",
              prefix: str = "Re: ") -> email.message.Message:
    """What a mail client sends back: Re: subject, new text on top, the original quoted below."""
    reply = EmailMessage()
    reply["From"] = f"Carol <{sender}>"
    reply["To"] = "bot@example.com"
    reply["Subject"] = prefix + str(original["Subject"])
    reply["Message-ID"] = "<reply-1@example.com>"
    quoted = "\n".join("> " + line for line in _body(original).splitlines())
    reply.set_content(f"{body}\n\nOn Fri, 2 Jan 2026 at 10:00, SimpleTuner <bot@example.com> wrote:\n{quoted}\n")
    return email.message_from_bytes(reply.as_bytes())


def test_approval_request_headers_and_body():
    msg = _roundtrip(_request())
    assert msg["To"] == "carol@example.com"
    assert msg["Subject"] == f"[SimpleTuner] Approval needed: sdxl-lora by alice (job job-42) [ref:{TOKEN}]"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg.get_content_type() == "text/plain" and msg.get_content_charset() == "utf-8"
    body = _body(msg)
    for needle in ("job-42", "sdxl-lora", "alice", "big-jobs", "Estimated cost above $100.",
                   "$1,234.50", "2026-01-02T10:30:15Z", "APPROVE", "REJECT", "first line",
                   "single-use", "personal", f"[ref:{TOKEN}]",
                   "https://tuner.example.com/api/approvals/requests?status=pending"):
        assert needle in body, needle
    assert "/approve" not in body  # the request id is not known here


def test_approval_request_without_cost_or_base_url_and_naive_expiry():
    body = _body(_roundtrip(_request(cost_estimate_usd=None, base_url=None,
                                     expires_at=datetime(2026, 3, 1, 8, 0))))
    assert "unknown" in body and "2026-03-01T08:00:00Z" in body
    assert "/api/approvals" not in body


def test_header_injection_is_flattened():
    msg = _roundtrip(_request(config_name="evil\r\nBcc: x@y", owner="a\nb"))
    assert msg["Bcc"] is None
    assert "evil Bcc: x@y by a b" in msg["Subject"]


def test_long_non_ascii_subject_keeps_token():
    msg = _request(config_name="überlanger-konfigurationsname-" * 4, owner="Jörg Müller")
    parsed = parse_reply(email.message_from_bytes(msg.as_bytes()))
    assert parsed.token == TOKEN
    assert "Jörg Müller" in parsed.subject


def test_our_own_mail_is_an_auto_reply():
    """If the bot ever reads its own mail back (loop), it must not answer it."""
    assert parse_reply(email.message_from_bytes(_request().as_bytes())).is_auto_reply is True


@pytest.mark.parametrize("prefix", ["Re: ", "RE: Re: ", "AW: ", "Fwd: "])
@pytest.mark.parametrize("answer, decision", [
    ("APPROVE", "approve"), ("LGTM!\nlooks good", "approve"), ("REJECT\ntoo expensive", "reject"),
    ("", None), ("hmm?", None),
])
def test_reply_to_request_parses(prefix, answer, decision):
    original = _roundtrip(_request())
    parsed = parse_reply(_reply_to(original, answer, prefix=prefix))
    assert parsed.token == TOKEN
    assert parsed.subject == prefix + original["Subject"]
    assert parsed.decision == decision
    assert parsed.sender == "carol@example.com" and parsed.message_id == "reply-1@example.com"
    assert parsed.is_auto_reply is False


def test_help_email():
    subject = f"Re: RE: [SimpleTuner] Approval needed: x by y (job j) [ref:{TOKEN}]"
    msg = _roundtrip(help_email("Carol@example.com", subject, TOKEN, "<reply-1@example.com>"))
    assert msg["Subject"] == f"Re: [SimpleTuner] Approval needed: x by y (job j) [ref:{TOKEN}]"
    assert msg["In-Reply-To"] == msg["References"] == "<reply-1@example.com>"
    assert msg["Auto-Submitted"] == "auto-generated"
    body = _body(msg)
    assert "APPROVE" in body and "REJECT" in body and f"[ref:{TOKEN}]" in body
    # the next reply to the help mail still carries the token
    parsed = parse_reply(_reply_to(msg, "approve"))
    assert (parsed.token, parsed.decision) == (TOKEN, "approve")


def test_help_email_adds_token_and_bare_message_id():
    msg = _roundtrip(help_email("c@x", "approval stuff", TOKEN, "reply-2@x"))
    assert msg["Subject"] == f"Re: approval stuff [ref:{TOKEN}]"
    assert msg["In-Reply-To"] == "<reply-2@x>"


def test_synthetic_message_id_is_not_threaded():
    """parse_reply invents sha256:<hex> ids for mail without Message-ID; they name no real mail."""
    msg = _roundtrip(refusal_email("c@x", "x", "expired", "sha256:" + "0" * 64))
    assert msg["In-Reply-To"] is None and msg["References"] is None


def test_help_email_without_token_or_thread():
    msg = _roundtrip(help_email("c@x", "aw: AW: hello", None, None))
    assert msg["Subject"] == "Re: hello"
    assert msg["In-Reply-To"] is None and msg["References"] is None
    assert "[ref:" not in _body(msg)


@pytest.mark.parametrize("kind, needle", [
    ("approved", "was approved by bob"), ("rejected", "was rejected by bob"),
    ("expired", "expired without a decision"), ("cancelled", "was cancelled by bob"),
])
def test_notice_email(kind, needle):
    msg = _roundtrip(notice_email("alice@x", kind, "job-42", "sdxl-lora", "alice", "bob",
                                  "too big\nsplit it", "rule big-jobs"))
    assert msg["Subject"] == f"[SimpleTuner] Job job-42 approval {kind}"
    assert msg["To"] == "alice@x" and msg["Auto-Submitted"] == "auto-generated"
    body = _body(msg)
    for text in (needle, "job-42", "sdxl-lora", "alice", "too big\nsplit it", "rule big-jobs"):
        assert text in body


def test_notice_email_without_optional_fields():
    body = _body(_roundtrip(notice_email("a@x", "expired", "j", "c", "o", None, None, None)))
    assert " by None" not in body and "Comment" not in body and "Reason" not in body
    with pytest.raises(ValueError):
        notice_email("a@x", "exploded", "j", "c", "o", None, None, None)  # type: ignore[arg-type]


def test_refusal_email():
    subject = f"RE: Re: [SimpleTuner] Approval needed: x by y (job j) [ref:{TOKEN}]"
    msg = _roundtrip(refusal_email("dave@x", subject, "this reference was already used", "<m@x>"))
    assert msg["Subject"] == "Re: [SimpleTuner] Approval needed: x by y (job j)"
    assert "already used" in _body(msg)
    assert msg["In-Reply-To"] == "<m@x>" and msg["Auto-Submitted"] == "auto-generated"
    assert parse_reply(_reply_to(msg, "approve")).token is None  # a refusal cannot be re-used
