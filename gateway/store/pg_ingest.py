"""Storing a message from a known identity on PostgreSQL in three statements.

Nearly every message comes from an identity the store knows, into the
customer's open conversation. For those, `ingest_known` takes: one statement
that locks the identity's customer (and looks for a retry of the message), one
that re-reads, under that lock, whom the identity belongs to, the customer's
identities and their open conversation, and one that numbers and inserts the
message. Everything else (a first contact, a retry, an account to link or
records to merge, a message for a given or a new conversation) takes the
general path (`PostgresStore` with pg_session.py), in the same transaction.
The locking is the general path's: the customer's row before anything of theirs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.models import InboundMessage, Verification
from gateway.protocols import Ingested
from gateway.store.pg_linking import IdentityMoved
from gateway.store.rows import (
    conversation_from_row,
    customer_from_row,
    identity_from_row,
    message_from_row,
    message_meta,
)
from gateway.store.rules import raised_verification

if TYPE_CHECKING:
    from gateway.store.pg_session import Sessions

Conn = Any  # asyncpg.Connection (asyncpg ships no type hints)

_LOCK = (
    "SELECT c.*, (SELECT id FROM messages WHERE channel=$3 AND external_id=$4) AS _dup"
    " FROM identities i JOIN customers c ON c.id = i.customer_id"
    " WHERE i.kind=$1 AND i.value=$2 FOR UPDATE OF c"
)
# A new statement (a new snapshot): what the lock now protects, as it is.
_LOCKED = (
    "SELECT i.customer_id AS _owner, i.verified AS _verified,"
    " ARRAY(SELECT x FROM identities x WHERE x.customer_id = i.customer_id ORDER BY x.id)"
    " AS _identities, v.*"
    " FROM identities i LEFT JOIN LATERAL (SELECT * FROM conversations"
    "   WHERE customer_id = i.customer_id AND state != 'closed' ORDER BY id DESC LIMIT 1) v"
    " ON true WHERE i.kind=$1 AND i.value=$2"
)
_INSERT = (
    "WITH s AS (UPDATE customers SET last_seq = last_seq + 1 WHERE id = $2 RETURNING last_seq)"
    " INSERT INTO messages (conversation_id, customer_id, seq, direction, author, channel,"
    " text, external_id, confidence, start_ms, end_ms, handled, meta, status, created_at)"
    " SELECT $1::int, $2::int, s.last_seq, 'inbound', 'customer', $3::text, $4::text,"
    " $5::text, $6::float8, $7::int, $8::int, false, $9::text, NULL, $10::bigint FROM s"
    " RETURNING *"
)


async def ingest_known(
    conn: Conn, sessions: Sessions, msg: InboundMessage, ts: int
) -> Ingested | None:
    """Store `msg` when it is the plain case (see the module docstring); None when it
    is not, with nothing written (the caller takes the general path)."""
    ident = msg.identity
    locked = await conn.fetchrow(
        _LOCK, ident.kind.value, ident.value, msg.channel.value, msg.external_id
    )
    if locked is None or locked["_dup"] is not None:
        return None  # a first contact, or a retry
    if msg.account_ref is not None and locked["account_ref"] != msg.account_ref:
        return None  # an account to link (perhaps records to merge), or another one
    if msg.conversation_id is not None or msg.new_conversation:
        return None
    row = await conn.fetchrow(_LOCKED, ident.kind.value, ident.value)
    if row is None or row["_owner"] != locked["id"]:
        raise IdentityMoved  # merged or moved before the lock: run it again
    cust = int(locked["id"])
    identities = [identity_from_row(i) for i in row["_identities"]]
    raised = raised_verification(Verification(row["_verified"]), ident.verified)
    name = locked["display_name"]
    if raised is not None or (msg.display_name and not name):
        await sessions.refresh(conn, cust, msg, Verification(row["_verified"]))
        name = name or msg.display_name
        identities = [ident if i.key == ident.key else i for i in identities]
    conv: dict[str, Any]
    if row["id"] is None:
        conv = await sessions.start_conversation(conn, cust, msg.channel, ts)
    else:
        conv = {k: v for k, v in row.items() if not k.startswith("_")}
    await sessions.move_to_channel(conn, conv, msg.channel, ts)
    timing = msg.timing
    inserted = await conn.fetchrow(
        _INSERT,
        conv["id"], cust, msg.channel.value, msg.text, msg.external_id, msg.confidence,
        timing.start_ms if timing else None, timing.end_ms if timing else None,
        message_meta(msg.attachments), ts,
    )  # fmt: skip
    customer = customer_from_row({**dict(locked), "display_name": name}, identities)
    return Ingested(
        customer=customer,
        conversation=conversation_from_row(conv),
        message=message_from_row(inserted),
    )


__all__ = ["ingest_known"]
