"""Parse e-mail replies to approval requests: reply token, the replier's own text, the decision.

Standard library only. Everything here is pure (no I/O), so the mailbox watcher can call it
from an activity and tests can feed it hand-written messages.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import Message
from email.utils import parseaddr
from html.parser import HTMLParser
from typing import Iterator, Literal

Decision = Literal["approve", "reject"]

# secrets.token_urlsafe(24) -> exactly 32 chars of [A-Za-z0-9_-]; the closing bracket pins the length.
REF_RE = re.compile(r"\[\s*ref\s*:\s*([A-Za-z0-9_-]{32})\s*\]", re.IGNORECASE)
MAX_TEXT = 2000

APPROVE_WORDS = frozenset({"approve", "approved", "yes", "lgtm", "+1", "ok", "okay"})
REJECT_WORDS = frozenset({"reject", "rejected", "no", "deny", "denied", "-1"})
NEGATIONS = frozenset({"not", "don't", "dont", "never", "no", "cannot", "can't"})
_NEGATION_WINDOW = 3  # a negation this many words before an approve word (same clause) negates it
_TOKEN_RE = re.compile(r"(?<!\w)[+-]1(?!\w)|[a-z0-9]+(?:'[a-z]+)*")
_CLAUSE_RE = re.compile(r"[,;.!:()\[\]]")

_ATTRIBUTION_RE = re.compile(
    r"^\s*(?:On\s.+\swrote|Am\s.+\s(?:schrieb|geschrieben)\b.*|Le\s.+\sa\s[ée]crit\s*)\s*:\s*$",
    re.IGNORECASE)
_ATTRIBUTION_START_RE = re.compile(r"^\s*(?:On|Am|Le)\s", re.IGNORECASE)
_CUT_RE = re.compile(
    r"^\s*(?:>"
    r"|-{2,}\s*(?:Original Message|Forwarded message|Ursprüngliche Nachricht|"
    r"Weitergeleitete Nachricht)\s*-{2,}\s*$"
    r"|Begin forwarded message:"
    r"|_{10,}\s*$"
    r"|--\s*$"
    r"|Sent from (?:my|Mail for|Outlook|Yahoo)\b"
    r"|Get Outlook for\b"
    r"|Von meinem \S+ gesendet)",
    re.IGNORECASE)
_HEADER_FROM_RE = re.compile(r"^\s*\*?(?:From|Von|De)\s*:\*?\s*\S", re.IGNORECASE)
_HEADER_NEXT_RE = re.compile(
    r"^\s*\*?(?:Sent|Date|To|Cc|Subject|Gesendet|Datum|An|Betreff|Envoyé|Objet|À)\s*:", re.IGNORECASE)


@dataclass(frozen=True)
class ParsedReply:
    """What the mailbox watcher needs from one inbound message."""
    message_id: str
    sender: str
    subject: str
    token: str | None
    text: str
    decision: Decision | None
    is_auto_reply: bool


def find_token(subject: str, body: str) -> str | None:
    """The reply token from ``[ref:<token>]``: the subject wins, else the first one in the body
    (quoted text included, since replies quote the original)."""
    for text in (subject or "", body or ""):
        m = REF_RE.search(text)
        if m:
            return m.group(1)
    return None


class _HtmlText(HTMLParser):
    """HTML to plain text: drops script/style/title and quoted mail (<blockquote>)."""
    _SKIP = ("script", "style", "title", "blockquote")
    _BLOCK = frozenset({"p", "div", "blockquote", "li", "tr", "table", "ul", "ol", "pre", "hr",
                        "h1", "h2", "h3", "h4", "h5", "h6"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = {t: 0 for t in self._SKIP}
        self.line_start = True  # block boundaries add a line break only after some text

    def _block(self) -> None:
        if not self.line_start:
            self.parts.append("\n")
            self.line_start = True

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self.skip:
            self.skip[tag] += 1
        if tag == "br":
            self.line_start = False  # always breaks, even an empty line
        if tag == "br" or tag in self._BLOCK:
            self._block()

    def handle_endtag(self, tag: str) -> None:
        if tag in self.skip and self.skip[tag]:
            self.skip[tag] -= 1
        if tag in self._BLOCK:
            self._block()

    def handle_data(self, data: str) -> None:
        if not any(self.skip.values()):
            text = re.sub(r"\s+", " ", data.replace("\xa0", " "))
            self.parts.append(text)
            self.line_start = self.line_start and not text.strip()


def html_to_text(html: str) -> str:
    """Visible text of an HTML body (entities unescaped), one line per <br>/block boundary,
    quoted mail (<blockquote>) dropped."""
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    lines = [line.strip() for line in "".join(parser.parts).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _walk(msg: Message) -> Iterator[Message]:
    """Leaf parts, not descending into attached messages (message/rfc822)."""
    if msg.is_multipart():
        for part in msg.get_payload():
            if part.get_content_type() != "message/rfc822":
                yield from _walk(part)
    else:
        yield msg


def _decode(part: Message) -> str:
    """A leaf part's payload (QP/base64 undone) decoded with its charset, errors replaced."""
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        return str(part.get_payload() or "")
    charset = (part.get_content_charset() or "utf-8").lower()
    try:  # us-ascii -> utf-8 (a superset; mislabelled 8-bit mail is common); unknown -> utf-8
        codecs.lookup(charset)
    except LookupError:
        charset = "utf-8"
    return raw.decode("utf-8" if charset in ("us-ascii", "ascii") else charset, errors="replace")


def _text_parts(msg: Message, subtype: str) -> Iterator[str]:
    for part in _walk(msg):
        if part.get_content_type() == f"text/{subtype}" and part.get_content_disposition() != "attachment":
            yield _decode(part)


def message_text(msg: Message) -> str:
    """The reply's text: first non-empty text/plain part, else the first text/html part as text."""
    for text in _text_parts(msg, "plain"):
        if text.strip():
            return text
    for html in _text_parts(msg, "html"):
        return html_to_text(html)
    return ""


def strip_reply(text: str) -> str:
    """Only what the replier wrote: cut at the first quote, attribution, forwarded/original
    message marker, Outlook header block, separator or signature; CRLF normalised."""
    lines = (text or "").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if (_CUT_RE.match(line) or _ATTRIBUTION_RE.match(line)
                or (_ATTRIBUTION_START_RE.match(line) and _ATTRIBUTION_RE.match(f"{line} {nxt}"))
                or (_HEADER_FROM_RE.match(line) and _HEADER_NEXT_RE.match(nxt))):
            break
        kept.append(line.rstrip())
    return "\n".join(kept).strip()


def _is_negation(token: str) -> bool:
    return token in NEGATIONS or token.endswith("n't")


def parse_decision(text: str) -> Decision | None:
    """approve / reject / None from the first non-empty line of the replier's text (strip_reply
    is applied again, which is idempotent, so quoted lines never count).

    Conservative: a question ("approve?") is not a decision; any negation on the line rules out
    approval; an approve word negated within 3 words of its clause ("not ok", "don't approve",
    "no, not ok") counts as a rejection; approve and reject words together ("approve and
    reject", "yes, no problem"), an approve word beside an unrelated negation ("ok but not
    now") or a negated reject word ("don't reject") are ambiguous -> None, so the watcher can
    answer with a help mail instead.
    """
    first = next((line.strip() for line in strip_reply(text).split("\n") if line.strip()), "")
    first = first.lower().replace("\u2019", "'").replace("`", "'")
    if not first or "?" in first:
        return None
    approve = negated_approve = reject = negated_reject = negation = False
    for clause in _CLAUSE_RE.split(first):
        tokens = _TOKEN_RE.findall(clause)
        for i, tok in enumerate(tokens):
            negation = negation or _is_negation(tok)
            negated = any(map(_is_negation, tokens[max(0, i - _NEGATION_WINDOW):i]))
            if tok in APPROVE_WORDS and negated:
                negated_approve = True
            elif tok in APPROVE_WORDS:
                approve = True
            elif tok in REJECT_WORDS:
                # "no" and "-1" reject on their own; no double-negative reading ("no, no").
                if negated and tok not in ("no", "-1"):
                    negated_reject = True
                else:
                    reject = True
    if approve:
        return "approve" if not (reject or negation or negated_reject) else None
    if negated_reject:
        return None
    if reject or negated_approve:
        return "reject"
    return None


def _raw(msg: Message, name: str) -> str | None:
    """A header's stored value, without the policy's parser (which can raise on malformed
    headers with policy.default); None when missing."""
    for key, value in msg.raw_items():
        if key.lower() == name.lower():
            return str(value)
    return None


def _header(msg: Message, name: str) -> str:
    """A header decoded (RFC 2047) and unfolded; "" when missing."""
    text = _raw(msg, name) or ""
    try:
        text = str(make_header(decode_header(text)))
    except Exception:  # malformed encoded words: keep the raw text
        pass
    return re.sub(r"\r?\n[ \t]*", " ", text).strip()


def _sender(msg: Message) -> str:
    """Lower-cased address of From, parsed before RFC 2047 decoding (a decoded display name
    such as "Müller, Jörg" would confuse parseaddr)."""
    raw = re.sub(r"\r?\n[ \t]*", " ", _raw(msg, "From") or "")
    return parseaddr(raw)[1].strip().lower()


def _raw_body(msg: Message) -> str:
    """The undecoded body text (all parts), the same whatever policy parsed the message."""
    if msg.is_multipart():
        return "\n".join(_raw_body(p) for p in msg.get_payload())
    return str(msg.get_payload())


def is_auto_reply(msg: Message) -> bool:
    """True for machine-sent mail the watcher must never answer (mail loops): Auto-Submitted other
    than "no", X-Autoreply/X-Autorespond, Precedence bulk/auto_reply/junk/list, empty Return-Path
    (bounces), delivery reports, and an empty or MAILER-DAEMON/postmaster sender."""
    submitted = _raw(msg, "Auto-Submitted")
    sender = _sender(msg)
    return bool(
        (submitted is not None and _header(msg, "Auto-Submitted").split(";")[0].strip().lower() != "no")
        or _raw(msg, "X-Autoreply") is not None or _raw(msg, "X-Autorespond") is not None
        or _header(msg, "Precedence").lower() in ("bulk", "auto_reply", "junk", "list")
        or _header(msg, "Return-Path") == "<>" or msg.get_content_type() == "multipart/report"
        or not sender or sender.split("@")[0] in ("mailer-daemon", "postmaster"))


def parse_reply(msg: Message) -> ParsedReply:
    """Everything the watcher needs from one inbound message (see ParsedReply)."""
    subject = _header(msg, "Subject")
    message_id = _header(msg, "Message-ID").strip().strip("<>").strip()
    if not message_id:
        seed = "\n".join((_raw_body(msg), _header(msg, "From"), _header(msg, "Date")))
        message_id = "sha256:" + hashlib.sha256(seed.encode("utf-8", "replace")).hexdigest()
    # The token may sit in quoted text, which message_text drops for HTML: search every text part.
    everything = "\n".join(t for sub in ("plain", "html") for t in _text_parts(msg, sub))
    text = strip_reply(message_text(msg))
    return ParsedReply(message_id=message_id, sender=_sender(msg), subject=subject,
                       token=find_token(subject, everything), text=text[:MAX_TEXT],
                       decision=parse_decision(text), is_auto_reply=is_auto_reply(msg))
