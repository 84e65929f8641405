"""The PostgreSQL store's outbox operations (see `OutboxStore`): plain functions of
a connection inside the store's write transaction. Several nodes claim due replies
at once; `FOR UPDATE SKIP LOCKED` gives each row to one of them."""

from __future__ import annotations

from typing import Any

from gateway.models import DeliveryStatus
from gateway.protocols import Pending
from gateway.store.rows import message_from_row, now_ms
from gateway.store.rules import OUTBOX_LEASE_MS

Conn = Any  # asyncpg.Connection (asyncpg ships no type hints)

_CLAIM = """
UPDATE messages SET claimed_until = $2 + $3::bigint
WHERE id IN (
    SELECT id FROM messages
    WHERE next_attempt_at <= $2 AND (claimed_until IS NULL OR claimed_until <= $2)
    ORDER BY next_attempt_at, id LIMIT $1
    FOR UPDATE SKIP LOCKED
)
RETURNING *
"""


async def claim_outbox(conn: Conn, limit: int, lease_ms: int = OUTBOX_LEASE_MS) -> list[Pending]:
    rows = await conn.fetch(_CLAIM, limit, now_ms(), lease_ms)
    rows = sorted(rows, key=lambda r: (r["next_attempt_at"], r["id"]))
    return [Pending(message=message_from_row(dict(r)), attempts=r["attempts"]) for r in rows]


async def retry_delivery(
    conn: Conn, message_id: int, delay_ms: int, error_code: str, not_taken: bool
) -> None:
    await conn.execute(
        "UPDATE messages SET error_code=$2, attempts=attempts+1, next_attempt_at=$3,"
        " claimed_until=NULL, status=CASE WHEN $4 THEN $5 ELSE status END"
        " WHERE id=$1 AND next_attempt_at IS NOT NULL",
        message_id, error_code[:20], now_ms() + delay_ms, not_taken,
        DeliveryStatus.QUEUED.value,
    )  # fmt: skip


async def release_outbox(conn: Conn) -> int:
    await conn.execute(
        "UPDATE messages SET claimed_until=NULL"
        " WHERE next_attempt_at IS NOT NULL AND claimed_until IS NOT NULL"
    )
    return int(await conn.fetchval(
        "SELECT count(*) FROM messages WHERE next_attempt_at IS NOT NULL"
    ))  # fmt: skip


__all__ = ["claim_outbox", "release_outbox", "retry_delivery"]
