"""Reply parsing for e-mail approvals: token, the replier's own text, decision, auto-replies."""

from __future__ import annotations

import email
import re
import secrets
from email import policy
from email.message import EmailMessage
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest

from activities.notify.mail.reply_parser import (
    MAX_TEXT, REF_RE, find_token, html_to_text, message_text, parse_decision, parse_reply,
    strip_reply,
)

TOKEN = "k3J_9-aZ" * 4
OTHER = "Qw-_8yTr" * 4
SUBJECT = f"[SimpleTuner] Approval needed: sdxl-lora by alice (job j-1) [ref:{TOKEN}]"


def test_token_format_matches_secrets():
    for _ in range(50):
        tok = secrets.token_urlsafe(24)
        assert len(tok) == 32
        assert REF_RE.fullmatch(f"[ref:{tok}]").group(1) == tok


# --- parse_decision --------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "approve", "APPROVE", "Approve", "approved", "Approved.", "yes", "Yes!", "lgtm", "LGTM",
    "LGTM!", "+1", "ok", "OK", "Ok.", "okay", "Okay!", "yes please", "Approved, thanks",
    "  approve  ", "\n\nAPPROVE\n", "LGTM\nlong explanation: no idea why it asked, not my problem",
    "approve - looks fine", "+1 from me",
])
def test_approvals(text):
    assert parse_decision(text) == "approve"


@pytest.mark.parametrize("text", [
    "reject", "REJECT", "rejected", "Rejected.", "no", "No", "NO!", "deny", "Denied", "-1",
    "Rejected - too expensive", "not ok", "not OK.", "I don't approve", "I dont approve",
    "I do not approve", "I can't approve this", "I can\u2019t approve this", "I cannot approve",
    "never ok", "no, not ok", "No. Not approved.", "reject\nok maybe later, see below",
    "-1 too expensive",
])
def test_rejections(text):
    assert parse_decision(text) == "reject"


@pytest.mark.parametrize("text", [
    "",                       # nothing
    "   \n \n",
    "maybe",
    "approve?",               # a question is not a decision
    "Approve? I am not sure",
    "ok but not now",         # negation: never an approval, and not a plain rejection either
    "approve and reject",     # both
    "yes no",
    "yes, no problem",        # reads like approval, but "no" is a reject word: ask again
    "don't reject",           # negated reject word: not an approval (negation), not a rejection
    "not rejected",
    "tokay",                  # "okay" only as a whole word
    "I know",                 # "no" only as a whole word
    "nothing",
    "notable",
    "+10",                    # "+1" only as a token
    "a+1",
    "approval",               # not in the word list
    "thanks\napprove",        # only the first non-empty line counts
    "> approve",              # quoted text is never the decision
    "-- \nok",                # signature
])
def test_undecided(text):
    assert parse_decision(text) is None


def test_first_line_only_even_if_later_lines_contradict():
    assert parse_decision("approve\nno wait, never mind") == "approve"
    assert parse_decision("reject\nyes I know, approve next week") == "reject"


# --- strip_reply -----------------------------------------------------------------------------

GMAIL = (
    "LGTM\n\nOn Mon, 1 Jan 2026 at 10:00, Bot <bot@x> wrote:\n"
    f"> [ref:{TOKEN}] A job needs approval\n> reply APPROVE or REJECT\n"
)
GMAIL_WRAPPED = (
    "reject, too big\n\nOn Mon, 1 Jan 2026 at 10:00, SimpleTuner Approval Bot <\n"
    "bot@example.com> wrote:\n\n> APPROVE or REJECT\n"
)
GERMAN = "Abgelehnt\n\nAm 01.01.2026 um 10:00 schrieb Bot <bot@x>:\n> approve\n"
GERMAN_WRAPPED = "nein\n\nAm Mo., 1. Jan. 2026 um 10:00 Uhr schrieb SimpleTuner Bot\n<bot@x>:\n> approve\n"
OUTLOOK_ORIGINAL = (
    "Rejected - too expensive\r\n\r\n-----Original Message-----\r\nFrom: Bot <bot@x>\r\n"
    "Sent: Monday, January 1, 2026 10:00 AM\r\nSubject: approval\r\n\r\nReply APPROVE to approve.\r\n"
)
OUTLOOK_HEADERS = (
    "Rejected - too expensive\r\n\r\nFrom: SimpleTuner <bot@x>\r\nSent: Monday, January 1, 2026\r\n"
    "To: Carol <carol@x>\r\nSubject: Approval needed [ref:" + TOKEN + "]\r\n\r\nPlease approve.\r\n"
)
OUTLOOK_UNDERSCORES = (
    "ok\r\n\r\n________________________________\r\nFrom: Bot <bot@x>\r\nSent: today\r\n\r\napprove\r\n"
)


@pytest.mark.parametrize("raw, expected", [
    (GMAIL, "LGTM"),
    (GMAIL_WRAPPED, "reject, too big"),
    (GERMAN, "Abgelehnt"),
    (GERMAN_WRAPPED, "nein"),
    ("ok\n\nLe lun. 1 janv. 2026 à 10:00, Bot <bot@x> a écrit :\n> approve\n", "ok"),
    (OUTLOOK_ORIGINAL, "Rejected - too expensive"),
    (OUTLOOK_HEADERS, "Rejected - too expensive"),
    (OUTLOOK_UNDERSCORES, "ok"),
    ("reject\n---------- Forwarded message ---------\nFrom: Bot <bot@x>\nDate: x\n", "reject"),
    ("approve\n-- \nAlice\nok team lead", "approve"),
    ("approve\n--\nAlice", "approve"),
    ("approve\n\nSent from my iPhone", "approve"),
    ("approve\n\nSent from my Android phone\n> quoted", "approve"),
    ("approve\n\nGet Outlook for iOS<https://aka.ms/o0ukef>", "approve"),
    ("approve\nVon meinem iPhone gesendet", "approve"),
    ("reject   \r\nbecause it is too big  \r\n\r\n\r\n", "reject\nbecause it is too big"),
    ("approve\r\rmore", "approve\n\nmore"),
    ("> quoted first\napprove", ""),  # cut at the first quoted line
    ("On second thought: reject\nit is too big", "On second thought: reject\nit is too big"),
    ("From: my side, approve\nthanks", "From: my side, approve\nthanks"),
    ("", ""),
])
def test_strip_reply(raw, expected):
    assert strip_reply(raw) == expected
    assert strip_reply(strip_reply(raw)) == strip_reply(raw)  # idempotent


@pytest.mark.parametrize("raw, decision", [
    (GMAIL, "approve"),
    (GMAIL_WRAPPED, "reject"),
    (OUTLOOK_ORIGINAL, "reject"),       # the quoted original says "approve"
    (OUTLOOK_HEADERS, "reject"),
    ("\n\nOn Mon, 1 Jan 2026 at 10:00, Bot <bot@x> wrote:\n> reply APPROVE or REJECT\n", None),
    (f"\n> [ref:{TOKEN}]\n> approve\n", None),
    ("-- \nBob (ok, whatever you need)\n", None),
    ("\n\nSent from my iPhone\n\nOn Mon, Bot wrote:\n> approve", None),
])
def test_decision_of_full_replies(raw, decision):
    assert parse_decision(strip_reply(raw)) == decision


# --- find_token ------------------------------------------------------------------------------

@pytest.mark.parametrize("subject, body, expected", [
    (SUBJECT, "", TOKEN),
    ("Re: " + SUBJECT, "", TOKEN),
    ("Re: Re: " + SUBJECT, "", TOKEN),
    ("AW: " + SUBJECT, "", TOKEN),
    ("Fwd: RE: " + SUBJECT, "", TOKEN),
    (f"Re: approval [REF: {TOKEN} ]", "", TOKEN),
    ("Re: approval", f"LGTM\n\nOn Mon, Bot wrote:\n> A job needs you [ref:{TOKEN}]\n> bye", TOKEN),
    ("Re: approval", f"LGTM\n>> nested quote [ref:{TOKEN}]", TOKEN),
    (f"Re: [ref:{TOKEN}]", f"> [ref:{OTHER}]", TOKEN),  # subject first
    ("", f"[ref:{OTHER}] and [ref:{TOKEN}]", OTHER),    # then the first in the body
    ("Re: approval", "no reference here", None),
    (f"[ref:{TOKEN[:31]}]", f"[ref:{TOKEN}x]", None),   # exactly 32 chars
    (f"[ref:{TOKEN[:31]}!]", "", None),
    (None, None, None),
])
def test_find_token(subject, body, expected):
    assert find_token(subject, body) == expected


# --- message_text ----------------------------------------------------------------------------

def _msg(raw: str) -> email.message.Message:
    return email.message_from_bytes(raw.encode("latin-1") if isinstance(raw, str) else raw)


def test_plain_text():
    msg = EmailMessage()
    msg.set_content("approve\n")
    assert message_text(msg).strip() == "approve"


def test_multipart_alternative_prefers_plain():
    msg = MIMEMultipart("alternative")
    msg.attach(MIMEText("reject from plain", "plain", "utf-8"))
    msg.attach(MIMEText("<p>approve from html</p>", "html", "utf-8"))
    assert message_text(email.message_from_bytes(msg.as_bytes())).strip() == "reject from plain"


def test_empty_plain_part_falls_back_to_html():
    msg = MIMEMultipart("alternative")
    msg.attach(MIMEText("  \n", "plain", "utf-8"))
    msg.attach(MIMEText("<div>approve</div>", "html", "utf-8"))
    assert message_text(msg) == "approve"


def test_html_only_reply_drops_blockquote():
    html = (
        "<html><head><title>Approval needed</title><style>div{color:red}</style>"
        "<script>var approve = 1;</script></head><body>"
        "<div dir='ltr'>reject&nbsp;&mdash; too &amp; expensive</div><div>second line</div>"
        "<div class='gmail_quote'><div class='gmail_attr'>On Mon, 1 Jan 2026 at 10:00, Bot "
        "&lt;bot@x&gt; wrote:<br></div><blockquote class='gmail_quote'>Please reply APPROVE"
        f"<blockquote>nested APPROVE</blockquote> [ref:{TOKEN}]</blockquote></div></body></html>"
    )
    msg = MIMEText(html, "html", "utf-8")
    msg["Subject"] = "Re: approval"
    msg["From"] = "carol@x"
    text = message_text(msg)
    assert "APPROVE" not in text and "approve" not in text and "Approval needed" not in text
    assert text.splitlines()[0] == "reject \u2014 too & expensive"
    parsed = parse_reply(msg)
    assert parsed.decision == "reject"
    assert parsed.token == TOKEN  # found in the quoted HTML even though the text drops it
    assert parsed.text == "reject \u2014 too & expensive\nsecond line"


def test_html_line_breaks():
    assert html_to_text("a<br>b<br/>c<p>d</p>e\n  f<div>g</div>") == "a\nb\nc\nd\ne f\ng"


def test_quoted_printable_body():
    raw = (
        "From: carol@x\nSubject: Re: x\nMIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n"
        "Gen=C3=A9hmigt? no: approve =E2=80=94 sch=C3=B6n\n\n"
        "On Mon, Bot wrote:\n> [ref:" + TOKEN[:20] + "=\n" + TOKEN[20:] + "]\n"
    )
    msg = _msg(raw)
    assert message_text(msg).startswith("Gen\u00e9hmigt? no: approve \u2014 sch\u00f6n")
    assert parse_reply(msg).token == TOKEN  # the soft line break inside the token is undone


def test_base64_body():
    msg = MIMEText("LGTM \u2714\n\n> quoted\n", "plain", "utf-8")  # utf-8 MIMEText -> base64
    assert "base64" in msg["Content-Transfer-Encoding"]
    parsed = parse_reply(email.message_from_bytes(msg.as_bytes()))
    assert parsed.text == "LGTM \u2714" and parsed.decision == "approve"


def test_iso_8859_1():
    raw = (
        b"From: =?iso-8859-1?q?J=F6rg?= <Joerg@Example.COM>\nSubject: =?iso-8859-1?q?AW:_Genehmigung_f=FCr?= "
        b"[ref:" + TOKEN.encode() + b"]\nMIME-Version: 1.0\nContent-Type: text/plain; charset=iso-8859-1\n"
        b"Content-Transfer-Encoding: 8bit\n\nreject, zu gro\xdf f\xfcr uns\n"
    )
    parsed = parse_reply(email.message_from_bytes(raw))
    assert parsed.text == "reject, zu gro\u00df f\u00fcr uns"
    assert parsed.decision == "reject"
    assert parsed.sender == "joerg@example.com"
    assert parsed.subject == f"AW: Genehmigung f\u00fcr [ref:{TOKEN}]"
    assert parsed.token == TOKEN


@pytest.mark.parametrize("charset", ["x-unknown-charset", "us-ascii"])
def test_unknown_or_mislabelled_charset_does_not_raise(charset):
    raw = (b"From: a@x\nContent-Type: text/plain; charset=" + charset.encode() +
           b"\nContent-Transfer-Encoding: 8bit\n\napprove \xc3\xa9\xff\n")
    text = message_text(email.message_from_bytes(raw))
    assert text.startswith("approve \u00e9")


def test_attachments_and_forwarded_messages_are_not_the_text():
    inner = MIMEText("approve (inside an attached message)", "plain")
    outer = MIMEMultipart("mixed")
    note = MIMEText("approve, says the attachment", "plain")
    note.add_header("Content-Disposition", "attachment", filename="note.txt")
    outer.attach(note)
    outer.attach(MIMEApplication(b"\x00\x01", Name="x.bin"))
    fwd = MIMEMultipart("mixed")
    fwd.attach(inner)
    wrapper = email.message.Message()
    wrapper["Content-Type"] = "message/rfc822"
    wrapper.set_payload([fwd])
    outer.attach(wrapper)
    outer.attach(MIMEText("reject", "plain"))
    assert message_text(email.message_from_bytes(outer.as_bytes())).strip() == "reject"
    assert message_text(MIMEApplication(b"x")) == ""


# --- parse_reply -----------------------------------------------------------------------------

def _reply(body: str = GMAIL, **headers: str) -> EmailMessage:
    msg = EmailMessage()
    base = {"From": "Carol Approver <Carol@Example.com>", "To": "bot@x",
            "Subject": "Re: " + SUBJECT, "Date": "Mon, 01 Jan 2026 10:05:00 +0000",
            "Message-ID": "<abc.123@mail.example.com>"}
    base.update(headers)
    for k, v in base.items():
        if v is not None:
            msg[k] = v
    msg.set_content(body)
    return email.message_from_bytes(msg.as_bytes())


def test_parse_reply_gmail():
    parsed = parse_reply(_reply())
    assert parsed.message_id == "abc.123@mail.example.com"
    assert parsed.sender == "carol@example.com"
    assert parsed.subject == "Re: " + SUBJECT
    assert parsed.token == TOKEN
    assert parsed.text == "LGTM"
    assert parsed.decision == "approve"
    assert parsed.is_auto_reply is False


@pytest.mark.parametrize("pol", [policy.compat32, policy.default, policy.SMTP])
def test_parse_reply_is_policy_independent(pol):
    raw = _reply(**{"Message-ID": None}).as_bytes()
    a, b = parse_reply(email.message_from_bytes(raw, policy=pol)), parse_reply(_reply(**{"Message-ID": None}))
    assert a == b and a.decision == "approve" and a.token == TOKEN


def test_parse_reply_token_only_in_quoted_body():
    parsed = parse_reply(_reply(Subject="Re: approval"))
    assert parsed.token == TOKEN and parsed.decision == "approve"


def test_parse_reply_outlook():
    parsed = parse_reply(_reply(OUTLOOK_HEADERS, Subject="RE: approval"))
    assert (parsed.token, parsed.decision, parsed.text) == (TOKEN, "reject", "Rejected - too expensive")


def test_missing_message_id_gets_stable_hash():
    a = parse_reply(_reply(**{"Message-ID": None}))
    b = parse_reply(_reply(**{"Message-ID": None}))
    c = parse_reply(_reply("LGTM!\n", **{"Message-ID": None}))
    d = parse_reply(_reply(**{"Message-ID": None, "Date": "Tue, 02 Jan 2026 10:05:00 +0000"}))
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", a.message_id)
    assert a.message_id == b.message_id
    assert len({a.message_id, c.message_id, d.message_id}) == 3
    raw = _reply(**{"Message-ID": None}).as_bytes()
    empty_id = email.message_from_bytes(b"Message-ID:  <>  \n" + raw, policy=policy.default)
    assert parse_reply(empty_id).message_id == a.message_id  # malformed header: no exception


def test_sender_with_encoded_comma_in_display_name():
    raw = (b"From: =?utf-8?q?M=C3=BCller=2C_J=C3=B6rg?= <J.Mueller@Example.com>\n"
           b"Subject: Re: x\n\napprove\n")
    for pol in (policy.compat32, policy.default):
        assert parse_reply(email.message_from_bytes(raw, policy=pol)).sender == "j.mueller@example.com"


def test_text_is_capped():
    parsed = parse_reply(_reply("approve\n" + "x" * 5000))
    assert len(parsed.text) == MAX_TEXT and parsed.decision == "approve"


@pytest.mark.parametrize("headers, auto", [
    ({}, False),
    ({"Auto-Submitted": "no"}, False),
    ({"Auto-Submitted": "auto-replied"}, True),
    ({"Auto-Submitted": "auto-generated"}, True),
    ({"Auto-Submitted": "auto-replied; owner-email=\"a@x\""}, True),
    ({"X-Autoreply": "yes"}, True),
    ({"X-Autorespond": "yes"}, True),
    ({"Precedence": "bulk"}, True),
    ({"Precedence": "Junk"}, True),
    ({"Precedence": "auto_reply"}, True),
    ({"Precedence": "list"}, True),
    ({"Precedence": "first-class"}, False),
    ({"Return-Path": "<>"}, True),
    ({"From": None}, True),
    ({"From": ""}, True),
    ({"From": "Mail Delivery System <MAILER-DAEMON@mx.example.com>"}, True),
    ({"From": "postmaster@example.com"}, True),
])
def test_auto_reply_detection(headers, auto):
    assert parse_reply(_reply(**headers)).is_auto_reply is auto


def test_delivery_report_is_auto():
    raw = (b"From: someone@x\nContent-Type: multipart/report; report-type=delivery-status; "
           b"boundary=b\n\n--b\nContent-Type: text/plain\n\nDelivery failed\n--b--\n")
    assert parse_reply(email.message_from_bytes(raw)).is_auto_reply is True
