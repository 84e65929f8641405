"""Twilio Programmable Messaging ⇄ the gateway's models. Pure: no I/O.

- `parse_inbound`: the incoming-message webhook's form (`From`, `To`, `Body`,
  `MessageSid` or the older `SmsMessageSid`, `AccountSid`, `NumMedia`,
  `MediaUrl{i}`, `MediaContentType{i}`) as an `Incoming`: the normalized
  `InboundMessage` (channel SMS, identity `phone:<E.164>` verified only as
  the sender, external id = the MessageSid, MMS media as attachments), the
  number the customer texted and the keyword the body is, if any.
- `keyword`: Twilio's default opt-out, opt-in and help keywords (a body that
  is only the keyword, any case, surrounding space and `.`/`!` ignored).
- `parse_status`: a message status callback (`MessageSid`, `MessageStatus`,
  `ErrorCode`) as a `StatusUpdate`; statuses of inbound messages are None.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from channels.twilio import ids
from gateway.errors import ProtocolError
from gateway.models import (
    MAX_TEXT_CHARS,
    Attachment,
    ChannelKind,
    DeliveryStatus,
    Identity,
    IdentityKind,
    InboundMessage,
    Verification,
)
from gateway.phone_numbers import to_e164

MAX_MEDIA = 10  # Twilio delivers at most ten media items with one message


class Keyword(enum.StrEnum):
    STOP = "stop"
    START = "start"
    HELP = "help"


# Twilio's defaults for long codes (Advanced Opt-Out uses the same sets).
KEYWORDS: dict[str, Keyword] = {
    **dict.fromkeys(
        ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"),
        Keyword.STOP,
    ),
    **dict.fromkeys(("START", "YES", "UNSTOP"), Keyword.START),
    **dict.fromkeys(("HELP", "INFO"), Keyword.HELP),
}

TWILIO_STATUS: dict[str, DeliveryStatus] = {
    "accepted": DeliveryStatus.QUEUED,
    "scheduled": DeliveryStatus.QUEUED,
    "queued": DeliveryStatus.QUEUED,
    "sending": DeliveryStatus.SENDING,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "undelivered": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
    "read": DeliveryStatus.READ,
}
INBOUND_STATUSES = frozenset({"receiving", "received"})


@dataclass(frozen=True)
class Incoming:
    """One incoming SMS/MMS."""

    message: InboundMessage
    to: str  # the number the customer texted (E.164 when it is one)
    keyword: Keyword | None


@dataclass(frozen=True)
class StatusUpdate:
    sid: str
    status: DeliveryStatus
    error_code: str | None


def keyword(body: str) -> Keyword | None:
    """The keyword `body` is, if it is nothing but one."""
    return KEYWORDS.get(body.strip().rstrip(".!").strip().upper())


def sender_identity(raw: str) -> Identity:
    """The sender's `phone:` identity in E.164 (ProtocolError if it is no phone number)."""
    number = to_e164(raw)
    if number is None:
        raise ProtocolError("bad_sender", f"From is not a phone number: {raw[:40]!r}")
    return Identity(kind=IdentityKind.PHONE, value=number, verified=Verification.SENDER)


def _required(form: Mapping[str, str], *names: str) -> str:
    for name in names:
        value = form.get(name, "").strip()
        if value:
            return value
    raise ProtocolError("missing_field", f"the webhook has no {' or '.join(names)}")


def parse_inbound(form: Mapping[str, str]) -> Incoming:
    """The incoming-message webhook's form as an `Incoming` (ProtocolError if malformed).

    Every field acted on has a fixed shape (channels/twilio/ids.py): the message sid
    (all of `MessageSid`, `SmsMessageSid`, `SmsSid` that are present agree), the
    account sid, and `NumMedia` with exactly its `MediaUrl{i}`/`MediaContentType{i}`
    pairs, so a boundary-shifted replay of a signed webhook is refused, never stored
    as a new message."""
    sid = ids.sid(form, ("MessageSid", "SmsMessageSid", "SmsSid"), "SM", "MM")
    if not ids.is_sid(form.get("AccountSid", ""), "AC"):
        raise ProtocolError("bad_field", "AccountSid is not an AC sid")
    identity = sender_identity(_required(form, "From"))
    to_raw = form.get("To", "").strip()
    body = form.get("Body", "")
    count = ids.count(form, "NumMedia", MAX_MEDIA)
    media_fields = {k for k in form if k.startswith(("MediaUrl", "MediaContentType"))}
    expected = {f"{name}{i}" for i in range(count) for name in ("MediaUrl", "MediaContentType")}
    if media_fields != expected:
        raise ProtocolError("bad_field", f"the media fields do not match NumMedia={count}")
    attachments = []
    for i in range(count):
        url = form[f"MediaUrl{i}"].strip()
        if not url.startswith("https://"):
            raise ProtocolError("bad_field", f"MediaUrl{i} is not an https URL")
        content_type = form[f"MediaContentType{i}"].strip() or "application/octet-stream"
        attachments.append(Attachment(url=url, content_type=content_type))
    try:
        message = InboundMessage(
            channel=ChannelKind.SMS,
            identity=identity,
            text=body[:MAX_TEXT_CHARS],
            external_id=sid,
            attachments=tuple(attachments),
        )
    except ValidationError as exc:
        raise ProtocolError("bad_field", f"unusable message {sid[:40]!r}: {exc}") from exc
    return Incoming(
        message=message,
        to=to_e164(to_raw) or to_raw,
        keyword=None if attachments else keyword(body),
    )


def parse_status(form: Mapping[str, str]) -> StatusUpdate | None:
    """A status callback as a `StatusUpdate`; None for an inbound message's status."""
    sid = ids.sid(form, ("MessageSid", "SmsSid"), "SM", "MM")
    raw = _required(form, "MessageStatus", "SmsStatus").lower()
    if raw in INBOUND_STATUSES:
        return None
    status = TWILIO_STATUS.get(raw)
    if status is None:
        raise ProtocolError("bad_field", f"unknown MessageStatus {raw[:40]!r}")
    error = form.get("ErrorCode", "").strip() or None
    if status is DeliveryStatus.FAILED and raw == "canceled" and error is None:
        error = "canceled"
    return StatusUpdate(sid=sid, status=status, error_code=error)


__all__ = [
    "KEYWORDS",
    "TWILIO_STATUS",
    "Incoming",
    "Keyword",
    "StatusUpdate",
    "keyword",
    "parse_inbound",
    "parse_status",
    "sender_identity",
]
