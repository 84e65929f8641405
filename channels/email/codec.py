"""Pure email codec: raw RFC 5322 bytes ⇄ what the gateway needs. No I/O.

- `parse` reads a message with the standard `email` package (modern policy): the
  sender (a lenient parse of From when the strict one cannot read it), threading
  headers, the reply text (`text`: bytes decoded without mojibake, HTML turned into
  text, quoted history and signatures cut), attachments, and whether the mail is
  automatic (`autodetect`: an auto-reply, a bounce, a mailing list or a no-reply
  sender) and must never be answered.
- `build_reply` writes the agent's answer with `Message-ID`, `In-Reply-To`,
  `References`, `Subject: Re: ...` and `Auto-Submitted: auto-replied`.
- `make_token` / `read_token`: the signed reply token carried in the Reply-To address
  (`support+c42.1a2b3c4d5e@example.com`).

`parse` is CPU work (seconds for a large HTML mail): the channel runs it off the event
loop (`channels.email.parsing`).
"""

from __future__ import annotations

import dataclasses
import email.errors
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from email import policy
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, make_msgid, parseaddr

from channels.email.autodetect import auto_reason, header
from channels.email.text import body_text, reply_text

MAX_REFERENCES = 20
MAX_RECIPIENTS = 100
# RFC 5321 4.5.3.1.3: a path is at most 256 octets with its angle brackets. A longer
# From can never be answered, and cutting it would make it someone else's address.
MAX_ADDRESS_CHARS = 254
UNREADABLE_NOTE = "(The body of this mail could not be read; only its headers were kept.)"
TIMEOUT_NOTE = "(This mail took too long to read; only its headers were kept.)"
_MSGID = re.compile(r"<[^<>\s]+>")
_ADDR = re.compile(r'^(?:"[^"\r\n]*"|[^@\s<>"]+)@[^@\s<>"]+$')
_BARE_ADDR = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_REPLY_PREFIX = re.compile(r"^\s*((re|aw|sv|antw|vs|réf|ref)\s*(\[\d+\])?\s*:\s*)+", re.I)
_FORWARD_PREFIX = re.compile(r"^\s*(fwd?|wg|tr)\s*:", re.I)
_TOKEN = re.compile(r"^c(\d{1,12})\.([0-9a-f]{10})$")


class MailError(ValueError):
    """The bytes are not a usable mail (no sender address)."""


class AddressTooLong(MailError):
    """The From address is longer than any address can be (RFC 5321)."""


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
    """Parse one mail. `envelope_from` is the SMTP `MAIL FROM` ("" for a bounce).

    MailError when there is no usable sender (AddressTooLong for an impossible one).
    A mail whose body the `email` package cannot walk (multipart nested so deep that
    it recurses out, or any other failure inside it) is read from its headers only,
    with a note for its text, so that it is stored rather than lost."""
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
        text, found = body_text(msg), attachments(msg)
    except MailError:
        raise
    except Exception:  # RecursionError above all: a structure too deep to walk
        return parse_headers(raw, envelope_from=envelope_from, note=UNREADABLE_NOTE)
    mail = _from_headers(msg, envelope_from, text)
    if not _FORWARD_PREFIX.match(mail.subject):
        text = reply_text(text)
    return dataclasses.replace(mail, text=text, attachments=tuple(found))


def parse_headers(raw: bytes, *, envelope_from: str | None = None, note: str) -> ParsedMail:
    """A mail read from its headers only (its body could not be read): `note` is its
    text. MailError as `parse` raises it."""
    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    head = raw[: min(ends)] if ends else raw  # the body is never read: it may be megabytes
    msg = BytesParser(policy=policy.default).parsebytes(head + b"\r\n\r\n", headersonly=True)
    return _from_headers(msg, envelope_from, note)


def _from_headers(msg: Message, envelope_from: str | None, text: str) -> ParsedMail:
    name, sender = sender_address(msg)
    if not sender or len(sender) > MAX_ADDRESS_CHARS:
        # A bounce often has no address in From ("MAILER-DAEMON <>"): automatic mail
        # is dropped as any automatic mail is, not refused.
        hint = sender or (name or header(msg, "From")).strip('<>" ').lower()
        auto = auto_reason(msg, hint, envelope_from)
        if auto is None and sender:
            raise AddressTooLong(f"the From address has {len(sender)} characters")
        if auto is None:
            raise MailError("no From address")
        return ParsedMail(
            sender="", display_name=None, message_id=None, in_reply_to=None, references=(),
            subject=header(msg, "Subject"), text="", recipients=(), auto=auto,
        )  # fmt: skip
    return ParsedMail(
        sender=sender,
        display_name=name or None,
        message_id=_first_id(header(msg, "Message-ID")),
        in_reply_to=_first_id(header(msg, "In-Reply-To")),
        references=tuple(_MSGID.findall(header(msg, "References")))[-MAX_REFERENCES:],
        subject=header(msg, "Subject"),
        text=text,
        recipients=tuple(
            a.lower() for _, a in getaddresses([header(msg, "To"), header(msg, "Cc")]) if "@" in a
        )[:MAX_RECIPIENTS],
        auto=auto_reason(msg, sender, envelope_from),
    )


def sender_address(msg: Message) -> tuple[str, str]:
    """(display name, lower-cased address) of From; ("", "") when it has no address.
    The strict header parser first; when it cannot read the header, the first address
    that a lenient parse of the raw value finds."""
    display, addr = parseaddr(header(msg, "From"))
    addr = addr.strip().lower()
    if _ADDR.match(addr):
        return display.strip(), addr
    for name, value in msg.raw_items():
        if name.lower() != "from":
            continue
        raw = " ".join(str(value).split())
        for display, addr in getaddresses([raw]):
            addr = addr.strip().lower()
            if _ADDR.match(addr):
                return _decoded(display), addr
        found = _BARE_ADDR.search(raw)
        return ("", found.group(0).lower()) if found else ("", "")
    return "", ""


def _decoded(display: str) -> str:
    try:
        return str(make_header(decode_header(display))).strip()
    except (LookupError, UnicodeError, ValueError, email.errors.HeaderParseError):
        return display.strip()


def _first_id(value: str) -> str | None:
    found = _MSGID.search(value)
    return found.group(0) if found else None


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
    "AddressTooLong",
    "MailAttachment",
    "MailError",
    "ParsedMail",
    "auto_reason",
    "build_reply",
    "make_token",
    "parse",
    "parse_headers",
    "read_token",
    "reply_subject",
    "split_plus",
]
