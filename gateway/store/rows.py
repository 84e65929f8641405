"""Conversions between database rows and the session model, shared by every
store implementation."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gateway.models import (
    Attachment,
    AuthorKind,
    ChannelKind,
    Conversation,
    ConversationState,
    Customer,
    DeliveryStatus,
    Direction,
    Event,
    HandoffBrief,
    Identity,
    IdentityKind,
    Message,
    Verification,
    VoiceTiming,
)

if TYPE_CHECKING:
    from gateway.protocols import OutboundDraft

Row = Mapping[str, Any]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def to_ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# Rows come from our own database, written through validated models, so they
# are rebuilt with `model_construct` (no re-validation): this is the hot path
# of every message.


def identity_from_row(row: Row) -> Identity:
    return Identity.model_construct(
        kind=IdentityKind(row["kind"]),
        value=row["value"],
        verified=Verification(row["verified"]),
    )


def customer_from_row(row: Row, identities: list[Identity]) -> Customer:
    return Customer.model_construct(
        id=row["id"],
        display_name=row["display_name"],
        account_ref=row["account_ref"],
        identities=tuple(identities),
        created_at=to_dt(row["created_at"]),
    )


def conversation_from_row(row: Row) -> Conversation:
    brief = row["brief"]
    return Conversation.model_construct(
        id=row["id"],
        customer_id=row["customer_id"],
        state=ConversationState(row["state"]),
        channel=ChannelKind(row["channel"]),
        channels=tuple(ChannelKind(c) for c in json.loads(row["channels"])),
        queue=row["queue"],
        brief=HandoffBrief.model_validate_json(brief) if brief else None,
        agent_state=json.loads(row["agent_state"] or "{}"),
        version=row["version"],
        created_at=to_dt(row["created_at"]),
        updated_at=to_dt(row["updated_at"]),
    )


def message_from_row(row: Row) -> Message:
    start, end = row["start_ms"], row["end_ms"]
    raw_meta = row.get("meta")
    meta: dict[str, Any] | None = json.loads(raw_meta) if raw_meta else None
    return Message.model_construct(
        id=row["id"],
        conversation_id=row["conversation_id"],
        customer_id=row["customer_id"],
        seq=row["seq"],
        direction=Direction(row["direction"]),
        author=AuthorKind(row["author"]),
        channel=ChannelKind(row["channel"]),
        text=row["text"],
        external_id=row["external_id"],
        confidence=row["confidence"],
        timing=VoiceTiming.model_construct(start_ms=start, end_ms=end)
        if start is not None
        else None,
        status=DeliveryStatus(row["status"]) if row.get("status") else None,
        error_code=row.get("error_code"),
        attachments=_attachments(meta),
        author_name=meta.get("author_name") if meta else None,
        created_at=to_dt(row["created_at"]),
    )


def _attachments(meta: dict[str, Any] | None) -> tuple[Attachment, ...]:
    if not meta:
        return ()
    return tuple(Attachment.model_validate(a) for a in meta.get("attachments", ()))


def message_meta(attachments: tuple[Attachment, ...]) -> str | None:
    """The `meta` JSON column for a new message."""
    if not attachments:
        return None
    return dumps({"attachments": [a.model_dump(exclude_none=True) for a in attachments]})


def draft_meta(draft: OutboundDraft) -> str | None:
    """The `meta` JSON column for a message the gateway writes (its author's name)."""
    return dumps({"author_name": draft.author_name}) if draft.author_name else None


def event_from_row(row: Row) -> Event:
    return Event.model_construct(
        id=row["id"],
        conversation_id=row["conversation_id"],
        kind=row["kind"],
        data=json.loads(row["data"]),
        created_at=to_dt(row["created_at"]),
    )


# Stronger evidence replaces weaker when the same identity shows up again.
VERIFICATION_RANK: dict[Verification, int] = {
    Verification.NONE: 0,
    Verification.SENDER: 1,
    Verification.CALLER_ID: 1,
    Verification.SIGNED_TOKEN: 2,
    Verification.BACKEND: 3,
    Verification.OTP: 4,
    Verification.HMAC: 4,
}
