"""Pure email codec: raw RFC 5322 bytes ⇄ what the gateway needs. No I/O.

- `parse` reads a message with the standard `email` package (modern policy): the
  sender, threading headers, the reply text (text/plain preferred, HTML-only mail
  turned into text with `html2text`, quoted history and signatures stripped with
  `mail-parser-reply`), attachments, and whether the mail is automatic (an
  auto-reply, a bounce, a mailing list or a no-reply sender, RFC 3834) and must never
  be answered.
- `build_reply` writes the agent's answer with `Message-ID`, `In-Reply-To`,
  `References`, `Subject: Re: ...` and `Auto-Submitted: auto-replied`.
- `make_token` / `read_token`: the signed reply token carried in the Reply-To address
  (`support+c42.1a2b3c4d5e@example.com`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, make_msgid, parseaddr

import html2text
from mailparser_reply import EmailReplyParser

MAX_REFERENCES = 20
_REPLY_PARSER = EmailReplyParser(languages=["en", "de", "fr", "es", "it", "nl"])
_MSGID = re.compile(r"<[^<>\s]+>")
_NO_REPLY = re.compile(
    r"^(no-?reply|do-?not-?reply|mailer-daemon|postmaster|bounces?|notifications?)([+\-.]|$)",
    re.I,
)
_REPLY_PREFIX = re.compile(r"^\s*((re|aw|sv|antw|vs|réf|ref)\s*(\[\d+\])?\s*:\s*)+", re.I)
_FORWARD_PREFIX = re.compile(r"^\s*(fwd?|wg|tr)\s*:", re.I)
_TOKEN = re.compile(r"^c(\d{1,12})\.([0-9a-f]{10})$")


class MailError(ValueError):
    """The bytes are not a usable mail (no sender address)."""


@dataclass(frozen=True)
class MailAttachment:
    filename: str | None
    content_type: str
    data: bytes = field(repr=False)

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class ParsedMail:
    sender: str  # lower-cased address from From (spoofable)
    display_name: str | None
    message_id: str | None  # "<...>"
    in_reply_to: str | None
    references: tuple[str, ...]
    subject: str
    text: str  # the new text only: quotes and signature stripped
    recipients: tuple[str, ...]  # To and Cc addresses, lower-cased
    attachments: tuple[MailAttachment, ...] = ()
    auto: str | None = None  # why this mail must never be answered, else None

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """Message-IDs this mail answers, the most direct first."""
        ids = [self.in_reply_to] if self.in_reply_to else []
        ids += [r for r in reversed(self.references) if r != self.in_reply_to]
        return tuple(ids)


def parse(raw: bytes, *, envelope_from: str | None = None) -> ParsedMail:
    """Parse one mail. `envelope_from` is the SMTP `MAIL FROM` ("" for a bounce)."""
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    name, sender = _address(msg, "From")
    if not sender:
        raise MailError("no From address")
    subject = _header(msg, "Subject")
    auto = auto_reason(msg, sender, envelope_from)
    text = body_text(msg)
    if not _FORWARD_PREFIX.match(subject):
        text = reply_text(text)
    return ParsedMail(
        sender=sender,
        display_name=name or None,
        message_id=_first_id(_header(msg, "Message-ID")),
        in_reply_to=_first_id(_header(msg, "In-Reply-To")),
        references=tuple(_MSGID.findall(_header(msg, "References")))[-MAX_REFERENCES:],
        subject=subject,
        text=text,
        recipients=tuple(
            a.lower() for _, a in getaddresses([_header(msg, "To"), _header(msg, "Cc")]) if "@" in a
        ),
        attachments=tuple(attachments(msg)),
        auto=auto,
    )


def _header(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception:  # a header so broken the policy cannot parse it
        return ""
    return " ".join(str(value).split()) if value is not None else ""


def _address(msg: Message, name: str) -> tuple[str, str]:
    display, addr = parseaddr(_header(msg, name))
    addr = addr.strip().lower()
    return display.strip(), addr if "@" in addr else ""


def _first_id(value: str) -> str | None:
    found = _MSGID.search(value)
    return found.group(0) if found else None


# ----------------------------------------------------------- loop prevention


def auto_reason(msg: Message, sender: str, envelope_from: str | None = None) -> str | None:
    """Why `msg` must not be answered (RFC 3834 and common practice), else None."""
    auto_submitted = _header(msg, "Auto-Submitted").lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        return f"auto-submitted: {auto_submitted}"
    precedence = _header(msg, "Precedence").lower()
    if precedence in {"bulk", "junk", "list", "auto_reply", "auto-reply"}:
        return f"precedence: {precedence}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Loop", "List-Id", "List-Unsubscribe"):
        if msg.get(name) is not None:
            return name.lower()
    suppress = _header(msg, "X-Auto-Response-Suppress").lower()
    if any(v in suppress for v in ("all", "autoreply", "oof")):
        return f"x-auto-response-suppress: {suppress}"
    if envelope_from is not None and envelope_from.strip("<> ") == "":
        return "null return path"
    return_path = _header(msg, "Return-Path")
    if return_path and return_path.strip("<> ") == "":
        return "null return path"
    if msg.get_content_type() == "multipart/report":
        return "delivery report"
    local = sender.partition("@")[0]
    if _NO_REPLY.match(local):
        return f"no-reply sender: {local}"
    if envelope_from and _NO_REPLY.match(envelope_from.strip("<>").partition("@")[0]):
        return "mailer-daemon return path"
    return None


# ------------------------------------------------------------------- text


def body_text(msg: EmailMessage | Message) -> str:
    """The mail's text: text/plain preferred, else HTML turned into text."""
    if not isinstance(msg, EmailMessage):
        return ""
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    text = _decode(part)
    if part.get_content_subtype() == "html":
        text = html_to_text(text)
    return text.replace("\r\n", "\n").strip()


def _decode(part: Message) -> str:
    try:
        content = part.get_content()  # type: ignore[attr-defined]
        if isinstance(content, str):
            return content
    except (LookupError, UnicodeError, ValueError, AssertionError):
        pass  # an unknown or lying charset
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    for charset in (part.get_content_charset(), "utf-8"):
        if charset:
            try:
                return payload.decode(charset)
            except (LookupError, UnicodeError):
                continue
    return payload.decode("latin-1")


def html_to_text(html: str) -> str:
    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.ignore_images = True
    converter.ignore_emphasis = True
    converter.ignore_links = True
    converter.ignore_tables = True
    # Keep table cells apart ("Account C-1001", not "AccountC-1001").
    text = converter.handle(re.sub(r"(?i)(</t[dh]\s*>)", r"\1 ", html))
    text = "\n".join(line.rstrip() for line in text.splitlines())
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def reply_text(text: str) -> str:
    """The new text of a reply: quoted history and signature stripped."""
    try:
        replies = _REPLY_PARSER.read(text).replies
    except Exception:  # the library chokes: keep the whole text rather than lose it
        return text.strip()
    body = replies[0].body.strip() if replies else ""
    return body or text.strip()


# ------------------------------------------------------------ attachments


def attachments(msg: EmailMessage | Message) -> list[MailAttachment]:
    if not isinstance(msg, EmailMessage):
        return []
    found = []
    for part in msg.iter_attachments():
        if part.is_multipart():
            continue
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            continue
        found.append(
            MailAttachment(
                filename=part.get_filename() or None,
                content_type=part.get_content_type(),
                data=data,
            )
        )
    return found


# ---------------------------------------------------------------- outbound


def reply_subject(subject: str) -> str:
    """`Re: <subject>`, without piling up prefixes."""
    base = _REPLY_PREFIX.sub("", subject).strip()
    return f"Re: {base}" if base else "Re: Your message"


def build_reply(
    *,
    sender: str,
    to: str,
    subject: str,
    text: str,
    domain: str,
    in_reply_to: str | None = None,
    references: tuple[str, ...] = (),
    reply_to: str | None = None,
    sender_name: str = "Support",
    message_id: str | None = None,
) -> EmailMessage:
    """The agent's answer, threaded under `in_reply_to` and marked as automatic;
    `message_id` when it is sent again (the first attempt's, so it is recognisable)."""
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = Address(display_name=sender_name, addr_spec=sender)
    msg["To"] = to
    msg["Subject"] = reply_subject(subject)
    msg["Message-ID"] = message_id or make_msgid(domain=domain)
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        refs = [r for r in references if r != in_reply_to][-(MAX_REFERENCES - 1) :]
        msg["References"] = " ".join([*refs, in_reply_to])
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["Auto-Submitted"] = "auto-replied"
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(text)
    return msg


def build_notice(
    *, sender: str, to: str, subject: str, text: str, domain: str, sender_name: str = "Support"
) -> EmailMessage:
    """A mail of our own outside any thread (a one-time code), marked as automatic
    (`Auto-Submitted: auto-generated`, RFC 3834) so no autoresponder answers it."""
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = Address(display_name=sender_name, addr_spec=sender)
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain=domain)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(text)
    return msg


# ------------------------------------------------------------ reply tokens


def make_token(secret: bytes, conversation_id: int) -> str:
    mac = hmac.new(secret, f"email-thread:{conversation_id}".encode(), hashlib.sha256)
    return f"c{conversation_id}.{mac.hexdigest()[:10]}"


def read_token(secret: bytes, token: str) -> int | None:
    found = _TOKEN.match(token.lower())
    if found is None:
        return None
    conversation_id = int(found.group(1))
    valid = hmac.compare_digest(make_token(secret, conversation_id), token.lower())
    return conversation_id if valid else None


def plus_address(address: str, tag: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local}+{tag}@{domain}"


def split_plus(address: str, support: str) -> tuple[bool, str | None]:
    """Whether `address` is the support address (with or without `+tag`), and its tag."""
    local, _, domain = address.lower().partition("@")
    s_local, _, s_domain = support.lower().partition("@")
    base, plus, tag = local.partition("+")
    if domain != s_domain or base != s_local:
        return False, None
    return True, tag if plus else None


__all__ = [
    "MailAttachment",
    "MailError",
    "ParsedMail",
    "auto_reason",
    "build_reply",
    "make_token",
    "parse",
    "read_token",
    "reply_subject",
    "split_plus",
]
