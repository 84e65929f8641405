"""`OutreachStore`: the durable state of every outreach (SQLite: sqlite_store.py,
PostgreSQL: pg_store.py; the SQL text here is shared, `?` marks).

An outreach row is claimed by one sender at a time (`claimed_until`), due again at
`due_at` (NULL once final). The step that sends is `begin_send`: in one transaction
it stores the outbound message (with its `outreach.sent` event and the agent's
context, as a turn) and records that message on the row. A crash after it leaves a
row `sending` with its message, which the outbox delivers (once: see
docs/reliability.md); the row is never sent a second message for the same channel.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Protocol

from gateway.models import DeliveryStatus
from gateway.outreach.models import (
    CallOutcome,
    Outreach,
    OutreachChannel,
    OutreachEvent,
    OutreachFigures,
    OutreachState,
)
from gateway.protocols import TurnRecord, TurnStored
from gateway.store.rows import Row, to_dt

# Columns a sender may change (`update` builds its SET from these names only).
MUTABLE = frozenset({
    "state", "customer_id", "conversation_id", "channel", "tried", "message_id", "call_sid",
    "outcome", "error", "due_at", "claimed_until", "sent_at",
})  # fmt: skip

INSERT = (
    "INSERT INTO outreach (id, event_id, type, payload, state, tried, due_at, created_at,"
    " updated_at) VALUES (?, ?, ?, ?, 'queued', '[]', ?, ?, ?) ON CONFLICT (event_id) DO NOTHING"
)
BY_EVENT = "SELECT * FROM outreach WHERE event_id = ?"
BY_ID = "SELECT * FROM outreach WHERE id = ?"
BY_MESSAGE = "SELECT * FROM outreach WHERE message_id = ?"
# A campaign's recipients are due only while it runs (campaign_store.py), and business
# events go before them: a 10,000-row campaign does not hold up a delayed-order text.
RUNNING = (
    "(campaign_id IS NULL OR campaign_id IN"
    " (SELECT id FROM outreach_campaigns WHERE state = 'running'))"
)
DUE = (
    "SELECT id FROM outreach WHERE due_at <= ? AND (claimed_until IS NULL OR claimed_until < ?)"
    f" AND {RUNNING} ORDER BY CASE WHEN campaign_id IS NULL THEN 0 ELSE 1 END, due_at LIMIT ?"
)
RELEASE = "UPDATE outreach SET claimed_until = NULL WHERE claimed_until IS NOT NULL"
SENT_SINCE = "SELECT COUNT(*) AS n FROM outreach WHERE customer_id = ? AND sent_at >= ? AND id <> ?"
MESSAGE_STATUS = "SELECT status, error_code FROM messages WHERE id = ?"
FIGURES = (
    "SELECT o.state, o.channel, o.error, m.status AS message_status, o.outcome,"
    " (SELECT COUNT(*) FROM messages r WHERE r.conversation_id = o.conversation_id"
    "  AND r.direction = 'inbound' AND o.sent_at IS NOT NULL AND r.created_at > o.sent_at)"
    " AS replies FROM outreach o LEFT JOIN messages m ON m.id = o.message_id"
    " WHERE o.created_at >= ? AND o.created_at < ?"
)
OPTED_OUT = ("opted_out", "unsubscribed")


def update_sql(fields: dict[str, Any]) -> tuple[str, list[Any]]:
    """`UPDATE outreach SET ... WHERE id = ?` for `fields` (MUTABLE names), and its
    arguments without the id (which goes last)."""
    bad = set(fields) - MUTABLE
    if bad:
        raise ValueError(f"not outreach columns a sender sets: {sorted(bad)}")
    values = [json.dumps(v) if k == "tried" else v for k, v in fields.items()]
    sets = ", ".join(f"{k} = ?" for k in fields)
    return f"UPDATE outreach SET {sets}, updated_at = ? WHERE id = ?", values


def outreach_from_row(row: Row) -> Outreach:
    payload = json.loads(row["payload"])
    return Outreach(
        id=row["id"],
        event_id=row["event_id"],
        type=row["type"],
        state=OutreachState(row["state"]),
        customer_id=row["customer_id"],
        conversation_id=row["conversation_id"],
        channel=OutreachChannel(row["channel"]) if row["channel"] else None,
        tried=tuple(OutreachChannel(c) for c in json.loads(row["tried"] or "[]")),
        message_id=row["message_id"],
        call_sid=row["call_sid"],
        outcome=CallOutcome(row["outcome"]) if row["outcome"] else None,
        error=row["error"],
        due_at=to_dt(row["due_at"]) if row["due_at"] is not None else None,
        created_at=to_dt(row["created_at"]),
        updated_at=to_dt(row["updated_at"]),
        sent_at=to_dt(row["sent_at"]) if row["sent_at"] is not None else None,
        campaign_id=row["campaign_id"],
        campaign_row=row["campaign_row"],
        event=OutreachEvent.model_validate(payload),
    )


def figures(rows: list[Row]) -> OutreachFigures:
    """Count the FIGURES rows of a period."""
    counts: dict[str, int] = dict.fromkeys(OutreachFigures.model_fields, 0)
    by_channel: dict[str, int] = {}
    delivered = {DeliveryStatus.DELIVERED.value, DeliveryStatus.READ.value}
    for r in rows:
        counts["created"] += 1
        state = r["state"]
        if state in (OutreachState.SENT, OutreachState.DELIVERED):
            counts["sent"] += 1
            by_channel[r["channel"]] = by_channel.get(r["channel"], 0) + 1
            if (state == OutreachState.DELIVERED or r["message_status"] in delivered
                    or r["outcome"] in (CallOutcome.HUMAN, CallOutcome.MACHINE)):  # fmt: skip
                counts["delivered"] += 1
            if r["replies"]:
                counts["replied"] += 1
        elif state == OutreachState.FAILED:
            counts["failed"] += 1
        elif state == OutreachState.SKIPPED:
            counts["skipped"] += 1
            if r["error"] in OPTED_OUT:
                counts["opted_out"] += 1
        elif state == OutreachState.DEFERRED:
            counts["deferred"] += 1
    counts.pop("by_channel", None)
    return OutreachFigures(**counts, by_channel=by_channel)


class OutreachStore(Protocol):
    async def insert(self, outreach_id: str, event: OutreachEvent, now_ms: int) -> (
        tuple[Outreach, bool]
    ):  # fmt: skip
        """Store the event as a queued outreach due now; when its id is known already,
        the stored outreach and False (nothing changes)."""
        ...

    async def get(self, outreach_id: str) -> Outreach | None: ...

    async def by_message(self, message_id: int) -> Outreach | None:
        """The outreach whose current attempt is this message, if any."""
        ...

    async def claim(self, limit: int, lease_ms: int, now_ms: int) -> list[Outreach]:
        """Claim up to `limit` due outreaches no live sender holds, for `lease_ms`."""
        ...

    async def update(self, outreach_id: str, now_ms: int, **fields: Any) -> None: ...

    async def begin_send(self, outreach_id: str, turn: TurnRecord, now_ms: int,
                         **fields: Any) -> TurnStored:  # fmt: skip
        """Store `turn` (the outreach's message and event) and `fields` on the row, in
        one transaction; the row's `message_id` is the turn's first message."""
        ...

    async def message_status(self, message_id: int) -> tuple[DeliveryStatus | None, str | None]: ...

    async def sent_since(self, customer_id: int, since_ms: int, other_than: str) -> int:
        """Outreach sent to the customer since `since_ms`, not counting `other_than`."""
        ...

    async def release(self) -> int:
        """Drop every claim (a single node starting); returns how many were held."""
        ...

    async def figures(self, since: datetime, until: datetime) -> OutreachFigures: ...


__all__ = ["OutreachStore", "figures", "outreach_from_row", "update_sql"]
