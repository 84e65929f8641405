"""The store on PostgreSQL (asyncpg), for several gateway nodes sharing one database.

Same schema and Alembic migrations as SQLite (run at start-up through psycopg,
serialized between nodes by an advisory lock), same rules (rules.py), same
semantics: every write commits before its coroutine returns. Several
processes write at once, so nothing is cached: each step reads what it needs
in its transaction and locks what it changes. A customer's row is locked
(`FOR UPDATE`) before any of their messages is numbered, which keeps `seq`
gap-free and unique per customer and picks one open conversation however
many nodes take that customer's messages at the same moment. Conversation
rows are locked after their customer's (one order everywhere). A transaction
that loses a race the database reports (a unique key taken meanwhile, a
deadlock, a serialization failure) runs again from the start.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

import asyncpg

from gateway.errors import ConfigError, ConflictError, NotFoundError, StoreError
from gateway.models import (
    ChannelKind,
    Conversation,
    Customer,
    DeliveryStatus,
    Event,
    Identity,
    InboundMessage,
    Message,
    VoiceTiming,
)
from gateway.protocols import (
    FreshTurn,
    Ingested,
    Linked,
    OpenedSession,
    Pending,
    TurnRecord,
    TurnStored,
)
from gateway.store import migrate, pg_outbox
from gateway.store import pg_reads as reads
from gateway.store.pg_ingest import ingest_known
from gateway.store.pg_linking import IdentityMoved, link
from gateway.store.pg_session import Conn, Sessions
from gateway.store.pg_turns import fresh_turn, lock_turn, write_turn
from gateway.store.rows import dumps, message_from_row, message_meta, now_ms, to_ms
from gateway.store.rules import (
    OUTBOX_LEASE_MS,
    delivery_failed,
    delivery_moves,
    leaves_outbox,
    version_conflict,
)
from gateway.store.urls import PgUrl
from gateway.store.usage_store import pg_insert, split_usage

log = logging.getLogger(__name__)

T = TypeVar("T")
ATTEMPTS = 6
_RACES = (
    asyncpg.exceptions.UniqueViolationError,
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.SerializationError,
    IdentityMoved,
)
_INSERT_MESSAGE = (
    "INSERT INTO messages (conversation_id, customer_id, seq, direction, author, channel, text,"
    " external_id, confidence, start_ms, end_ms, handled, meta, status, created_at)"
    " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15) RETURNING *"
)


class PostgresStore:
    """`Store` on PostgreSQL. Open with `await PostgresStore.open(url)`."""

    def __init__(
        self, url: PgUrl, pool: asyncpg.Pool, *, outbox_lease_ms: int = OUTBOX_LEASE_MS
    ) -> None:
        self.url = url
        self.pool = pool
        self.outbox_lease_ms = outbox_lease_ms  # see rules.OUTBOX_LEASE_MS
        self.sessions = Sessions(self)

    @classmethod
    async def open(
        cls, url: str, *, pool_max: int = 20, outbox_lease_ms: int = OUTBOX_LEASE_MS
    ) -> PostgresStore:
        """Migrate the database at `url` and open a connection pool. ConfigError naming
        GATEWAY_DATABASE_URL when it cannot be reached."""
        pg = PgUrl.parse(url)
        try:
            await asyncio.to_thread(migrate.upgrade, pg.sqlalchemy)
        except Exception as exc:
            raise ConfigError(
                f"GATEWAY_DATABASE_URL: cannot open the PostgreSQL database {pg.redacted}:"
                f" {_first_line(exc)}"
            ) from exc
        try:
            pool = await asyncpg.create_pool(
                pg.dsn, min_size=1, max_size=pool_max, timeout=10, reset=_keep_session
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise ConfigError(
                f"GATEWAY_DATABASE_URL: cannot connect to {pg.redacted}: {_first_line(exc)}"
            ) from exc
        return cls(pg, pool, outbox_lease_ms=outbox_lease_ms)

    async def close(self) -> None:
        await self.pool.close()

    # ------------------------------------------------------------ plumbing

    async def write(self, fn: Callable[[Conn], Awaitable[T]]) -> T:
        """Run `fn` in a transaction, committed before this returns; run again (from the
        start) when it lost a race the database reported."""
        for attempt in range(ATTEMPTS):
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    return await fn(conn)
            except _RACES as exc:
                if attempt == ATTEMPTS - 1:
                    raise StoreError(f"store write kept losing races: {exc}") from exc
                await asyncio.sleep(random.uniform(0, 0.005 * (attempt + 1)))
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                raise StoreError(f"store write failed: {_first_line(exc)}") from exc
        raise AssertionError("unreachable")

    async def read(self, fn: Callable[[Conn], Awaitable[T]]) -> T:
        try:
            async with self.pool.acquire() as conn:
                return await fn(conn)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise StoreError(f"store read failed: {_first_line(exc)}") from exc

    # ---------------------------------------------------------------- ingest

    async def ingest(self, message: InboundMessage) -> Ingested:
        return await self.write(lambda conn: self._ingest(conn, message))

    async def _ingest(self, conn: Conn, msg: InboundMessage) -> Ingested:
        ts = now_ms()
        known = await ingest_known(conn, self.sessions, msg, ts)
        if known is not None:
            return known
        if msg.external_id is not None:
            dup = await conn.fetchrow(
                "SELECT * FROM messages WHERE channel=$1 AND external_id=$2",
                msg.channel.value,
                msg.external_id,
            )
            if dup is not None:
                return Ingested(
                    customer=await reads.customer(conn, dup["customer_id"]),
                    conversation=await reads.conversation(conn, dup["conversation_id"]),
                    message=message_from_row(dup),
                    duplicate=True,
                    handled=bool(dup["handled"]),
                )
        cust, created = await self.sessions.resolve_customer(conn, msg, ts)
        conv = await self.sessions.conversation_for(conn, cust, msg, ts)
        timing = msg.timing
        seq = await _next_seqs(conn, cust, 1)
        row = await conn.fetchrow(
            _INSERT_MESSAGE,
            conv["id"], cust, seq, "inbound", "customer", msg.channel.value, msg.text,
            msg.external_id, msg.confidence, timing.start_ms if timing else None,
            timing.end_ms if timing else None, False, _meta(msg), None, ts,
        )  # fmt: skip
        return Ingested(
            customer=await reads.customer(conn, cust),
            conversation=await reads.conversation(conn, conv["id"]),
            message=message_from_row(row),
            created_customer=created,
        )

    async def open_session(
        self,
        identity: Identity,
        channel: ChannelKind,
        *,
        display_name: str | None = None,
        account_ref: str | None = None,
    ) -> OpenedSession:
        probe = InboundMessage(
            channel=channel, identity=identity, text="", display_name=display_name,
            account_ref=account_ref,
        )  # fmt: skip
        return await self.write(lambda conn: self.sessions.open_session(conn, probe))

    # ------------------------------------------------------------ record_turn

    async def record_turn(self, turn: TurnRecord) -> TurnStored:
        return await self.write(lambda conn: self.turn_in(conn, turn, check=True))

    async def turn_in(self, conn: Conn, turn: TurnRecord, *, check: bool = False) -> TurnStored:
        """`record_turn` inside a running transaction; without `check`, at the
        conversation's current version (routing changes, which lock it here).
        Two statements: the locks, then every write (pg_turns.py)."""
        conv = await lock_turn(conn, turn.conversation_id)
        if check:
            conflict = version_conflict(conv["id"], conv["version"], turn.expected_version)
            if conflict is not None:
                raise ConflictError(conflict)
        kept, usage = split_usage(turn.events)
        events = [(e.kind, dumps(e.data)) for e in kept]
        ts = now_ms()
        stored = await write_turn(conn, conv, turn, events, ts, self.outbox_lease_ms)
        if usage is not None:  # the turn's LLM tokens, a call's speech: with the turn
            await pg_insert(conn, conv["id"], usage, None, ts)
        return stored

    async def fresh_turn(self, message: Message, history: int) -> FreshTurn | None:
        """See `TurnGate.fresh` (the turn gate's one read, pg_turns.py)."""
        return await self.read(lambda conn: fresh_turn(conn, message, history))

    # --------------------------------------------------------- amend, delivery

    async def amend_message(
        self,
        message_id: int,
        *,
        text: str | None = None,
        timing: VoiceTiming | None = None,
        reason: str = "",
    ) -> Message:
        async def op(conn: Conn) -> Message:
            row = await conn.fetchrow("SELECT * FROM messages WHERE id=$1 FOR UPDATE", message_id)
            if row is None:
                raise NotFoundError(f"no message {message_id}")
            if text is not None and text != row["text"]:
                data = {"message_id": message_id, "original": row["text"], "text": text,
                        "reason": reason}  # fmt: skip
                await self.sessions.event(conn, row["conversation_id"], row["customer_id"],
                                          "message.cut", data, now_ms())  # fmt: skip
                row = await conn.fetchrow(
                    "UPDATE messages SET text=$2 WHERE id=$1 RETURNING *", message_id, text
                )
            if timing is not None:
                row = await conn.fetchrow(
                    "UPDATE messages SET start_ms=$2, end_ms=$3 WHERE id=$1 RETURNING *",
                    message_id, timing.start_ms, timing.end_ms,
                )  # fmt: skip
            return message_from_row(row)

        return await self.write(op)

    async def set_delivery(
        self,
        message_id: int,
        status: DeliveryStatus,
        *,
        external_id: str | None = None,
        error_code: str | None = None,
    ) -> Message:
        return await self.write(
            lambda conn: self._set_delivery(conn, message_id, status, external_id, error_code)
        )

    async def update_delivery(
        self,
        channel: ChannelKind,
        external_id: str,
        status: DeliveryStatus,
        *,
        error_code: str | None = None,
    ) -> Message | None:
        async def op(conn: Conn) -> Message | None:
            found = await conn.fetchval(
                "SELECT id FROM messages WHERE channel=$1 AND external_id=$2",
                channel.value, external_id,
            )  # fmt: skip
            if found is None:
                return None
            return await self._set_delivery(conn, found, status, None, error_code)

        return await self.write(op)

    async def _set_delivery(
        self, conn: Conn, message_id: int, status: DeliveryStatus, external_id: str | None,
        error_code: str | None,
    ) -> Message:  # fmt: skip
        row = await conn.fetchrow("SELECT * FROM messages WHERE id=$1 FOR UPDATE", message_id)
        if row is None:
            raise NotFoundError(f"no message {message_id}")
        if external_id is not None and row["external_id"] is None:
            row = await conn.fetchrow(
                "UPDATE messages SET external_id=$2 WHERE id=$1 RETURNING *", message_id,
                external_id,
            )  # fmt: skip
        if delivery_moves(row["status"], status):
            row = await conn.fetchrow(
                "UPDATE messages SET status=$2, error_code=$3 WHERE id=$1 RETURNING *",
                message_id, status.value, error_code,
            )  # fmt: skip
            if leaves_outbox(status):
                row = await conn.fetchrow(
                    "UPDATE messages SET next_attempt_at=NULL, claimed_until=NULL WHERE id=$1"
                    " RETURNING *", message_id,
                )  # fmt: skip
            if delivery_failed(status):
                data = {"message_id": message_id, "status": status.value, "error_code": error_code}
                await self.sessions.event(conn, row["conversation_id"], row["customer_id"],
                                          "delivery.failed", data, now_ms())  # fmt: skip
        return message_from_row(row)

    async def claim_outbox(self, limit: int) -> list[Pending]:
        lease = self.outbox_lease_ms
        return await self.write(lambda conn: pg_outbox.claim_outbox(conn, limit, lease))

    async def retry_delivery(
        self, message_id: int, delay_ms: int, error_code: str, *, not_taken: bool = False
    ) -> None:
        await self.write(
            lambda conn: pg_outbox.retry_delivery(conn, message_id, delay_ms, error_code, not_taken)
        )

    async def release_outbox(self) -> int:
        return await self.write(pg_outbox.release_outbox)

    async def set_opt_out(self, identity: Identity, opted_out: bool) -> bool:
        async def op(conn: Conn) -> bool:
            done = await conn.execute(
                "UPDATE identities SET opted_out_at=$1 WHERE kind=$2 AND value=$3",
                now_ms() if opted_out else None, identity.kind.value, identity.value,
            )  # fmt: skip
            return str(done) != "UPDATE 0"

        return await self.write(op)

    async def link_identity(
        self,
        customer_id: int,
        identity: Identity,
        *,
        account_ref: str | None = None,
    ) -> Linked:
        async def op(conn: Conn) -> Linked:
            plan = await link(conn, customer_id, identity, account_ref, ts=now_ms())
            if plan.merge is not None:
                log.info("merged customer %s into %s (code for %s)",
                         plan.merge, customer_id, identity.kind.value)  # fmt: skip
            return Linked(result=plan.result, customer=await reads.customer(conn, customer_id))

        return await self.write(op)

    # ----------------------------------------------------------------- reads

    async def get_customer(self, customer_id: int) -> Customer:
        return await self.read(lambda c: reads.customer(c, customer_id))

    async def find_customer(self, identity: Identity) -> Customer | None:
        return await self.read(lambda c: reads.customer_by_identity(c, identity))

    async def get_conversation(self, conversation_id: int) -> Conversation:
        return await self.read(lambda c: reads.conversation(c, conversation_id))

    async def history(
        self, customer_id: int, *, after_seq: int | None = None, limit: int = 100
    ) -> list[Message]:
        return await self.read(lambda c: reads.history(c, customer_id, after_seq, limit))

    async def conversation_messages(self, conversation_id: int) -> list[Message]:
        return await self.read(lambda c: reads.conversation_messages(c, conversation_id))

    async def events(self, conversation_id: int) -> list[Event]:
        return await self.read(lambda c: reads.events(c, conversation_id))

    async def count_events(self, customer_id: int, kind: str, since: datetime) -> int:
        return await self.read(lambda c: reads.count_events(c, customer_id, kind, to_ms(since)))

    async def unhandled_messages(self, older_than: datetime | None = None) -> list[Message]:
        """Inbound messages never answered (with `older_than`: stored before it)."""
        cutoff = None if older_than is None else to_ms(older_than)
        return await self.read(lambda c: reads.unhandled_messages(c, cutoff))

    async def message_handled(self, message_id: int) -> bool:
        return await self.read(lambda c: reads.message_handled(c, message_id))

    async def find_message(self, channel: ChannelKind, external_id: str) -> Message | None:
        return await self.read(lambda c: reads.message_by_external_id(c, channel, external_id))

    async def is_opted_out(self, identity: Identity) -> bool:
        return await self.read(lambda c: reads.opted_out(c, identity))


async def _keep_session(conn: Conn) -> None:
    """A connection going back to the pool needs no reset query (one round trip per
    use saved): asyncpg has already rolled back any open transaction, and this store
    leaves nothing else on a session (no SET, LISTEN, cursor or session-level
    advisory lock; those live on connections of their own, pg_locks.py, pg_listen.py)."""
    return None


async def _next_seqs(conn: Conn, customer_id: int, n: int) -> int:
    """Reserve `n` sequence numbers of the (locked) customer; returns the last."""
    return int(
        await conn.fetchval(
            "UPDATE customers SET last_seq = last_seq + $2 WHERE id=$1 RETURNING last_seq",
            customer_id,
            n,
        )
    )


def _meta(msg: InboundMessage) -> str | None:
    return message_meta(msg.attachments)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


__all__ = ["PostgresStore"]
