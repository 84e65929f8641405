"""The web chat wire format: parse client frames, format server frames.

Pure: no I/O, no clock, no app state. Every client frame is a JSON object with
a `type`; anything that does not follow PROTOCOL.md raises
`gateway.errors.ProtocolError` whose `code` goes into the error frame the
transport sends back (the socket stays open). Server frames are built here as
JSON text so the transport only moves strings.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from gateway.errors import ProtocolError
from gateway.models import ChannelKind, Direction, Message

MAX_FRAME_BYTES = 16 * 1024
"""Largest client frame accepted; a 2000-character message in JSON fits many times over."""

CLIENT_ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
# No ':' in client ids, so `external_id` ("<who>:<client id>") splits unambiguously.
MAX_USER_ID_CHARS = 128
MAX_NAME_CHARS = 200
MAX_TOKEN_CHARS = 512
MAX_SIGNATURE_CHARS = 256


def _valid_unicode(value: str) -> str:
    # JSON escapes can smuggle lone surrogates ("\ud800") that no database or
    # browser can encode; refuse them here rather than fail deep in the store.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("contains invalid unicode (a lone surrogate)") from None
    return value


Text = Annotated[str, AfterValidator(_valid_unicode)]


class MessageRefused(ProtocolError):
    """A well-formed `message` frame the gateway will not take; names its `client_id`
    so the client can stop resending it."""

    def __init__(self, code: str, message: str, client_id: str) -> None:
        super().__init__(code, message)
        self.client_id = client_id


class ClientFrame(BaseModel):
    """Base of client frames: immutable, strict types, unknown fields ignored
    (a newer widget may send more than this server knows)."""

    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)


class UserClaim(ClientFrame):
    """A site's signed-in user: `signature` is hex HMAC-SHA256 of `id`."""

    id: Annotated[Text, Field(min_length=1, max_length=MAX_USER_ID_CHARS)]
    name: Annotated[Text, Field(max_length=MAX_NAME_CHARS)] | None = None
    signature: Annotated[Text, Field(max_length=MAX_SIGNATURE_CHARS)]


class Hello(ClientFrame):
    """First frame of every connection."""

    type: Literal["hello"]
    visitor_token: Annotated[Text, Field(max_length=MAX_TOKEN_CHARS)] | None = None
    user: UserClaim | None = None
    last_seq: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = None


class ChatMessage(ClientFrame):
    """The visitor wrote something; `client_id` makes a resend idempotent."""

    type: Literal["message"]
    text: Text
    client_id: Annotated[Text, Field(pattern=CLIENT_ID_PATTERN)]


class ClientTyping(ClientFrame):
    """The visitor is typing: shown to a rep who holds the conversation."""

    type: Literal["typing"]
    active: bool


class Ping(ClientFrame):
    """Application-level keep-alive; answered with `pong`."""

    type: Literal["ping"]


AnyClientFrame = Annotated[Hello | ChatMessage | ClientTyping | Ping, Field(discriminator="type")]
_CLIENT_FRAME: TypeAdapter[Hello | ChatMessage | ClientTyping | Ping] = TypeAdapter(AnyClientFrame)


MAX_INT_DIGITS = 20
"""Longer integer literals are not parsed (every integer field is a sequence number)."""


def _bounded_int(literal: str) -> int | float:
    # Python refuses int() of over 4,300 digits with a ValueError (not a JSON error);
    # a literal longer than any sequence number becomes a value no field accepts.
    return int(literal) if len(literal) <= MAX_INT_DIGITS else float("inf")


def parse_client_frame(
    raw: str, *, max_text_chars: int, max_frame_bytes: int = MAX_FRAME_BYTES
) -> Hello | ChatMessage | ClientTyping | Ping:
    """Parse one text frame; raise ProtocolError (with a stable `code`) when it is bad."""
    # Cheap bound first (a char is at most 4 bytes), exact byte count only near the cap.
    if len(raw) > max_frame_bytes or len(raw.encode("utf-8", "surrogatepass")) > max_frame_bytes:
        raise ProtocolError("frame_too_large", f"frames are limited to {max_frame_bytes} bytes")
    try:
        data = json.loads(raw, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        raise ProtocolError("bad_json", f"frame is not valid JSON: {exc.msg}") from None
    except RecursionError:  # 16 KiB of '[' nests deeper than the parser recurses
        raise ProtocolError("bad_json", "frame is nested too deeply") from None
    if not isinstance(data, dict):
        raise ProtocolError("bad_frame", "a frame must be a JSON object with a `type`")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("missing_field", "`type` is required and must be a string")
    try:
        frame = _CLIENT_FRAME.validate_python(data)
    except ValidationError as exc:
        raise _protocol_error(exc, kind) from None
    if isinstance(frame, ChatMessage):
        if len(frame.text) > max_text_chars:
            raise MessageRefused(
                "text_too_long",
                f"messages are limited to {max_text_chars} characters",
                frame.client_id,
            )
        if not frame.text.strip():
            raise MessageRefused("empty_text", "a message needs some text", frame.client_id)
    return frame


def _protocol_error(exc: ValidationError, kind: str) -> ProtocolError:
    err = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in err["loc"][1:]) or "frame"
    if err["type"] == "union_tag_invalid":
        return ProtocolError("unknown_type", f"unknown frame type {kind[:40]!r}")
    if err["type"] == "missing":
        return ProtocolError("missing_field", f"`{where}` is required")
    return ProtocolError("invalid_field", f"`{where}`: {err['msg']}")


# --------------------------------------------------------------- identifiers


def external_id(who: str, client_id: str) -> str:
    """The store's idempotency key for a visitor's message: `<who>:<client id>`."""
    return f"{who}:{client_id}"


def client_id_of(message: Message) -> str | None:
    """The widget's `client_id` of a message it sent, else None."""
    if (
        message.channel is not ChannelKind.WEBCHAT
        or message.direction is not Direction.INBOUND
        or not message.external_id
    ):
        return None
    _, sep, client_id = message.external_id.rpartition(":")
    return client_id if sep else None


# ------------------------------------------------------------- server frames


def _dump(frame: dict[str, Any]) -> str:
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


def message_payload(message: Message) -> dict[str, Any]:
    """One stored message as the client sees it (inside `message` and `history`)."""
    return {
        "seq": message.seq,
        "id": message.id,
        "author": message.author.value,
        "author_name": message.author_name,
        "text": message.text,
        "channel": message.channel.value,
        "client_id": client_id_of(message),
        "ts": message.created_at.isoformat(),
    }


def message_frame(message: Message) -> str:
    return _dump({"type": "message", **message_payload(message)})


def welcome_frame(
    *, visitor_token: str, customer_name: str | None, user_id: str | None, known: bool,
    last_seq: int, max_message_chars: int,
) -> str:  # fmt: skip
    """`customer` is null for an anonymous visitor we have never stored a message from."""
    customer = {"name": customer_name, "user_id": user_id} if known or user_id else None
    return _dump(
        {"type": "welcome", "visitor_token": visitor_token, "customer": customer,
         "last_seq": last_seq, "max_message_chars": max_message_chars}
    )  # fmt: skip


def history_frame(messages: Iterable[Message], *, reset: bool, complete: bool) -> str:
    """`reset`: replace what the client shows; `complete`: the last history page."""
    return _dump(
        {"type": "history", "messages": [message_payload(m) for m in messages],
         "reset": reset, "complete": complete}
    )  # fmt: skip


def ack_frame(client_id: str, seq: int, *, duplicate: bool = False) -> str:
    return _dump({"type": "ack", "client_id": client_id, "seq": seq, "duplicate": duplicate})


def typing_frame(active: bool) -> str:
    return _dump({"type": "typing", "author": "agent", "active": active})


def notice_frame(code: str, text: str) -> str:
    return _dump({"type": "notice", "code": code, "text": text})


def rating_frame(url: str, text: str) -> str:
    """Ask for a 1-5 rating of a closed conversation; the widget POSTs `score` to `url`."""
    return _dump({"type": "rating", "url": url, "scale": 5, "text": text})


def error_frame(code: str, message: str, client_id: str | None = None) -> str:
    """`client_id` names the refused message, when the error is about one."""
    return _dump({"type": "error", "code": code, "message": message, "client_id": client_id})


def pong_frame() -> str:
    return _dump({"type": "pong"})


__all__ = [
    "MAX_FRAME_BYTES",
    "ChatMessage",
    "ClientTyping",
    "Hello",
    "MessageRefused",
    "Ping",
    "UserClaim",
    "ack_frame",
    "client_id_of",
    "error_frame",
    "external_id",
    "history_frame",
    "message_frame",
    "message_payload",
    "notice_frame",
    "parse_client_frame",
    "pong_frame",
    "typing_frame",
    "welcome_frame",
]
