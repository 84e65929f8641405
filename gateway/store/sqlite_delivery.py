"""The SQLite store's delivery and opt-out writes: plain functions of the writer
connection, run inside its transaction."""

from __future__ import annotations

import sqlite3

from gateway.errors import NotFoundError
from gateway.models import ChannelKind, DeliveryStatus, Identity, Message
from gateway.protocols import Pending
from gateway.store.rows import message_from_row, now_ms
from gateway.store.rules import OUTBOX_LEASE_MS, delivery_failed, delivery_moves, leaves_outbox
from gateway.store.sqlite_session import insert_event


def set_delivery(
    conn: sqlite3.Connection, message_id: int, status: DeliveryStatus,
    external_id: str | None, error_code: str | None,
) -> Message:  # fmt: skip
    """See `Store.set_delivery`: a status only moves forward (rules.py); a failure
    is logged as an event of the conversation."""
    row = conn.execute("SELECT * FROM messages WHERE id=?", (message_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no message {message_id}")
    if external_id is not None and row["external_id"] is None:
        conn.execute("UPDATE messages SET external_id=? WHERE id=?", (external_id, message_id))
        row["external_id"] = external_id
    if delivery_moves(row["status"], status):
        conn.execute(
            "UPDATE messages SET status=?, error_code=? WHERE id=?",
            (status.value, error_code, message_id),
        )
        row.update(status=status.value, error_code=error_code)
        if leaves_outbox(status):
            conn.execute(
                "UPDATE messages SET next_attempt_at=NULL, claimed_until=NULL WHERE id=?",
                (message_id,),
            )
        if delivery_failed(status):
            data = {"message_id": message_id, "status": status.value, "error_code": error_code}
            insert_event(conn, row["conversation_id"], row["customer_id"],
                         "delivery.failed", data, now_ms())  # fmt: skip
    return message_from_row(row)


def update_delivery(
    conn: sqlite3.Connection, channel: ChannelKind, external_id: str,
    status: DeliveryStatus, error_code: str | None,
) -> Message | None:  # fmt: skip
    """`set_delivery` for the message the channel knows as `external_id`, if any."""
    row = conn.execute(
        "SELECT id FROM messages WHERE channel=? AND external_id=?",
        (channel.value, external_id),
    ).fetchone()
    if row is None:
        return None
    return set_delivery(conn, row["id"], status, None, error_code)


def claim_outbox(
    conn: sqlite3.Connection, limit: int, lease_ms: int = OUTBOX_LEASE_MS
) -> list[Pending]:
    """See `OutboxStore.claim_outbox` (one writer: the transaction is the claim)."""
    now = now_ms()
    rows = conn.execute(
        "SELECT * FROM messages WHERE next_attempt_at <= ?"
        " AND (claimed_until IS NULL OR claimed_until <= ?) ORDER BY next_attempt_at, id"
        " LIMIT ?",
        (now, now, limit),
    ).fetchall()
    conn.executemany(
        "UPDATE messages SET claimed_until=? WHERE id=?",
        [(now + lease_ms, row["id"]) for row in rows],
    )
    return [Pending(message=message_from_row(row), attempts=row["attempts"]) for row in rows]


def retry_delivery(
    conn: sqlite3.Connection, message_id: int, delay_ms: int, error_code: str, not_taken: bool
) -> None:
    """See `OutboxStore.retry_delivery`; a reply that left the outbox stays out."""
    conn.execute(
        "UPDATE messages SET error_code=?, attempts=attempts+1, next_attempt_at=?,"
        " claimed_until=NULL, status=CASE WHEN ? THEN ? ELSE status END"
        " WHERE id=? AND next_attempt_at IS NOT NULL",
        (error_code[:20], now_ms() + delay_ms, not_taken, DeliveryStatus.QUEUED.value,
         message_id),
    )  # fmt: skip


def release_outbox(conn: sqlite3.Connection) -> int:
    """See `OutboxStore.release_outbox`."""
    conn.execute(
        "UPDATE messages SET claimed_until=NULL WHERE next_attempt_at IS NOT NULL"
        " AND claimed_until IS NOT NULL"
    )
    row = conn.execute(
        "SELECT count(*) AS n FROM messages WHERE next_attempt_at IS NOT NULL"
    ).fetchone()
    return int(row["n"])


def set_opt_out(conn: sqlite3.Connection, identity: Identity, opted_out: bool) -> bool:
    """Mark (or clear) the identity's opt-out; False when the identity is unknown."""
    cur = conn.execute(
        "UPDATE identities SET opted_out_at=? WHERE kind=? AND value=?",
        (now_ms() if opted_out else None, identity.kind.value, identity.value),
    )
    return cur.rowcount > 0
