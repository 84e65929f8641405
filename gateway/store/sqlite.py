"""The embedded store: SQLite in WAL mode, one process.

Writes go through one writer thread with group commit (see `writer.py`); reads
run on a small pool of read-only connections, which WAL lets proceed while the
writer commits. Because this process is the only writer of the file (a lock
file enforces it), the writer thread keeps caches of identities, customers and
open conversations that are always current, so the hot path of a message is a
couple of inserts rather than a round of lookups. Finding the customer and
conversation (and those caches) is `sqlite_session.py`; delivery and opt-out
writes are `sqlite_delivery.py`; reads are `sqlite_reads.py`; the lock file and
the connections' pragmas are `sqlite_connect.py`.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from gateway.errors import ConflictError, NotFoundError, StoreError
from gateway.models import (
    ChannelKind,
    Conversation,
    Customer,
    DeliveryStatus,
    Direction,
    Event,
    Identity,
    InboundMessage,
    Message,
    VoiceTiming,
)
from gateway.protocols import (
    Ingested,
    Linked,
    LinkResult,
    OpenedSession,
    Pending,
    TurnRecord,
    TurnStored,
)
from gateway.store import linking, migrate
from gateway.store import sqlite_delivery as delivery
from gateway.store import sqlite_reads as reads
from gateway.store.rows import (
    conversation_from_row,
    draft_meta,
    message_from_row,
    message_meta,
    now_ms,
    to_ms,
)
from gateway.store.rules import OUTBOX_LEASE_MS, turn_changes, version_conflict
from gateway.store.sqlite_connect import acquire_lock, connect_reader, connect_writer
from gateway.store.sqlite_session import Sessions, insert_event
from gateway.store.usage_store import split_usage, sqlite_insert
from gateway.store.writer import GroupCommitWriter

log = logging.getLogger(__name__)

T = TypeVar("T")

_INSERT_MESSAGE = (
    "INSERT INTO messages (conversation_id, customer_id, seq, direction, author, channel, text,"
    " external_id, confidence, start_ms, end_ms, handled, meta, status, next_attempt_at,"
    " claimed_until, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


class SqliteStore:
    """`Store` on an SQLite file. Open with `SqliteStore.open(path)`."""

    def __init__(
        self, path: Path, *, synchronous: str = "FULL", batch_max: int = 256,
        exclusive: bool = True, outbox_lease_ms: int = OUTBOX_LEASE_MS,
    ) -> None:  # fmt: skip
        """`exclusive` False (only `gateway reps`, beside a running gateway): no lock and
        no migration; only the routing store's own rows may then be written (reps, which
        hold no writer cache; SQLite's own locking orders the two writers' commits)."""
        self.path = path
        self.outbox_lease_ms = outbox_lease_ms  # see rules.OUTBOX_LEASE_MS
        self._synchronous = synchronous
        self._lock_file = acquire_lock(path) if exclusive else None
        try:
            if exclusive:
                migrate.upgrade(f"sqlite:///{path}")
        except Exception as exc:
            if self._lock_file is not None:
                self._lock_file.close()
            raise StoreError(f"cannot migrate the database at {path}: {exc}") from exc
        self._sessions = Sessions()  # the writer thread's caches; touched only from it
        self._writer = GroupCommitWriter(
            self._connect_writer, batch_max=batch_max, on_rollback=self._sessions.drop
        )
        self._local = threading.local()
        self._readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="store-reader")
        self._reader_conns: list[sqlite3.Connection] = []

    @classmethod
    def open(cls, path: Path, **kwargs: Any) -> SqliteStore:
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls(path, **kwargs)

    # --------------------------------------------------------- connections

    def _connect_writer(self) -> sqlite3.Connection:
        return connect_writer(self.path, self._synchronous)

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect_reader(self.path)
            self._local.conn = conn
            self._reader_conns.append(conn)
        return conn

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, lambda: fn(self._reader()))

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._writer.close)
        self._readers.shutdown(wait=True)
        for conn in self._reader_conns:
            conn.close()
        if self._lock_file is not None:
            self._lock_file.close()

    # ---------------------------------------------------------------- ingest

    async def ingest(self, message: InboundMessage) -> Ingested:
        return await self._writer.submit(lambda conn: self._ingest(conn, message))

    def _ingest(self, conn: sqlite3.Connection, msg: InboundMessage) -> Ingested:
        sessions = self._sessions
        sessions.trim()
        if msg.external_id is not None:
            dup = conn.execute(
                "SELECT * FROM messages WHERE channel=? AND external_id=?",
                (msg.channel.value, msg.external_id),
            ).fetchone()
            if dup is not None:
                cust = sessions.customer(conn, dup["customer_id"])
                conv = sessions.conversation(conn, dup["conversation_id"])
                return Ingested(
                    customer=sessions.snapshot(cust),
                    conversation=conversation_from_row(conv),
                    message=message_from_row(dup),
                    duplicate=True,
                    handled=bool(dup["handled"]),
                )
        ts = now_ms()
        cust, created = sessions.resolve_customer(conn, msg, ts)
        conv = sessions.conversation_for(conn, cust["id"], msg, ts)
        sessions.move_to_channel(conn, conv, msg.channel, ts)
        seq = sessions.next_seq(conn, cust)
        timing = msg.timing
        params = (
            conv["id"], cust["id"], seq, Direction.INBOUND.value, "customer",
            msg.channel.value, msg.text, msg.external_id, msg.confidence,
            timing.start_ms if timing else None, timing.end_ms if timing else None,
            0, message_meta(msg.attachments), None, None, None, ts,
        )  # fmt: skip
        cur = conn.execute(_INSERT_MESSAGE, params)
        row = dict(zip(_MESSAGE_COLUMNS, (cur.lastrowid, *params), strict=True))
        return Ingested(
            customer=sessions.snapshot(cust),
            conversation=conversation_from_row(conv),
            message=message_from_row(row),
            created_customer=created,
        )

    # ---------------------------------------------------------- open_session

    async def open_session(
        self,
        identity: Identity,
        channel: ChannelKind,
        *,
        display_name: str | None = None,
        account_ref: str | None = None,
    ) -> OpenedSession:
        probe = InboundMessage(
            channel=channel,
            identity=identity,
            text="",
            display_name=display_name,
            account_ref=account_ref,
        )
        return await self._writer.submit(lambda conn: self._sessions.open_session(conn, probe))

    # --------------------------------------------------------- amend_message

    async def amend_message(
        self,
        message_id: int,
        *,
        text: str | None = None,
        timing: VoiceTiming | None = None,
        reason: str = "",
    ) -> Message:
        return await self._writer.submit(
            lambda conn: self._amend_message(conn, message_id, text, timing, reason)
        )

    def _amend_message(
        self, conn: sqlite3.Connection, message_id: int, text: str | None,
        timing: VoiceTiming | None, reason: str,
    ) -> Message:  # fmt: skip
        row = conn.execute("SELECT * FROM messages WHERE id=?", (message_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no message {message_id}")
        if text is not None and text != row["text"]:
            conn.execute("UPDATE messages SET text=? WHERE id=?", (text, message_id))
            data = {"message_id": message_id, "original": row["text"], "text": text,
                    "reason": reason}  # fmt: skip
            insert_event(conn, row["conversation_id"], row["customer_id"], "message.cut",
                         data, now_ms())  # fmt: skip
            row["text"] = text
        if timing is not None:
            conn.execute(
                "UPDATE messages SET start_ms=?, end_ms=? WHERE id=?",
                (timing.start_ms, timing.end_ms, message_id),
            )
            row.update(start_ms=timing.start_ms, end_ms=timing.end_ms)
        return message_from_row(row)

    # ------------------------------------------------------------ record_turn

    async def record_turn(self, turn: TurnRecord) -> TurnStored:
        return await self._writer.submit(lambda conn: self._record_turn(conn, turn))

    def _record_turn(self, conn: sqlite3.Connection, turn: TurnRecord) -> TurnStored:
        conv = self._sessions.conversation(conn, turn.conversation_id)
        conflict = version_conflict(conv["id"], conv["version"], turn.expected_version)
        if conflict is not None:
            raise ConflictError(conflict)
        cust = self._sessions.customer(conn, conv["customer_id"])
        ts = now_ms()
        stored: list[Message] = []
        for draft in turn.outbound:
            seq = self._sessions.next_seq(conn, cust)
            # A reply enters the outbox with its turn, claimed by this node (it sends it now).
            out = draft.direction is Direction.OUTBOUND
            params = (
                conv["id"], cust["id"], seq, draft.direction.value, draft.author.value,
                draft.channel.value, draft.text, None, None, None, None, 1, draft_meta(draft),
                DeliveryStatus.QUEUED.value if out else None, ts if out else None,
                ts + self.outbox_lease_ms if out else None, ts,
            )  # fmt: skip
            cur = conn.execute(_INSERT_MESSAGE, params)
            stored.append(
                message_from_row(dict(zip(_MESSAGE_COLUMNS, (cur.lastrowid, *params), strict=True)))
            )
        events, usage = split_usage(turn.events)
        for event in events:
            insert_event(conn, conv["id"], cust["id"], event.kind, event.data, ts)
        if usage is not None:  # the turn's LLM tokens, a call's speech: with the turn
            sqlite_insert(conn, conv["id"], usage, None, ts)
        if turn.handled_message_id is not None:
            conn.execute("UPDATE messages SET handled=1 WHERE id=?", (turn.handled_message_id,))
        changes = turn_changes(conv, turn, ts)
        updates = changes.updates
        if changes.state_event is not None:
            insert_event(conn, conv["id"], cust["id"], "state.changed",
                         changes.state_event, ts)  # fmt: skip
        if changes.closing:
            self._sessions.closed(cust["id"])
        conn.execute(
            f"UPDATE conversations SET {', '.join(f'{k}=?' for k in updates)} WHERE id=?",
            (*updates.values(), conv["id"]),
        )
        conv.update(updates)
        return TurnStored(conversation=conversation_from_row(conv), messages=tuple(stored))

    # -------------------------------------------------------------- delivery

    async def set_delivery(
        self,
        message_id: int,
        status: DeliveryStatus,
        *,
        external_id: str | None = None,
        error_code: str | None = None,
    ) -> Message:
        return await self._writer.submit(
            lambda conn: delivery.set_delivery(conn, message_id, status, external_id, error_code)
        )

    async def update_delivery(
        self,
        channel: ChannelKind,
        external_id: str,
        status: DeliveryStatus,
        *,
        error_code: str | None = None,
    ) -> Message | None:
        return await self._writer.submit(
            lambda conn: delivery.update_delivery(conn, channel, external_id, status, error_code)
        )

    async def claim_outbox(self, limit: int) -> list[Pending]:
        lease = self.outbox_lease_ms
        return await self._writer.submit(lambda conn: delivery.claim_outbox(conn, limit, lease))

    async def retry_delivery(
        self, message_id: int, delay_ms: int, error_code: str, *, not_taken: bool = False
    ) -> None:
        await self._writer.submit(
            lambda conn: delivery.retry_delivery(conn, message_id, delay_ms, error_code, not_taken)
        )

    async def release_outbox(self) -> int:
        return await self._writer.submit(delivery.release_outbox)

    async def set_opt_out(self, identity: Identity, opted_out: bool) -> bool:
        return await self._writer.submit(
            lambda conn: delivery.set_opt_out(conn, identity, opted_out)
        )

    async def link_identity(
        self,
        customer_id: int,
        identity: Identity,
        *,
        account_ref: str | None = None,
    ) -> Linked:
        """See `Store.link_identity` and, for when records are merged, `linking`."""

        def op(conn: sqlite3.Connection) -> Linked:
            done = linking.link(conn, customer_id, identity, account_ref, ts=now_ms())
            if done.merged is not None:
                log.info("merged customer %s into %s (code for %s)",
                         done.merged, customer_id, identity.kind.value)  # fmt: skip
                self._sessions.drop()  # rows moved owner; the caches reload in this transaction
            elif done.result in (LinkResult.LINKED, LinkResult.ALREADY):
                self._sessions.linked(identity.key, customer_id, done.moved_from)
            return Linked(
                result=done.result,
                customer=self._sessions.snapshot(self._sessions.customer(conn, customer_id)),
            )

        return await self._writer.submit(op)

    # ------------------------------------------------- shared with siblings

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` on the writer connection in a group-committed transaction. Other
        stores of the same file (routing) write through here: one writer, one lock,
        and this store's caches stay current."""
        return await self._writer.submit(fn)

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` on a read-only connection in the reader pool."""
        return await self._read(fn)

    def turn_in(self, conn: sqlite3.Connection, turn: TurnRecord) -> TurnStored:
        """`record_turn` inside a running `write`, at the conversation's current version
        (the caller holds the writer, so nothing can move it on meanwhile)."""
        conv = self._sessions.conversation(conn, turn.conversation_id)
        current = turn.model_copy(update={"expected_version": conv["version"]})
        return self._record_turn(conn, current)

    # ----------------------------------------------------------------- reads

    async def get_customer(self, customer_id: int) -> Customer:
        return await self._read(lambda c: reads.customer(c, customer_id))

    async def find_customer(self, identity: Identity) -> Customer | None:
        return await self._read(lambda c: reads.customer_by_identity(c, identity))

    async def get_conversation(self, conversation_id: int) -> Conversation:
        return await self._read(lambda c: reads.conversation(c, conversation_id))

    async def history(
        self, customer_id: int, *, after_seq: int | None = None, limit: int = 100
    ) -> list[Message]:
        return await self._read(lambda c: reads.history(c, customer_id, after_seq, limit))

    async def conversation_messages(self, conversation_id: int) -> list[Message]:
        return await self._read(lambda c: reads.conversation_messages(c, conversation_id))

    async def events(self, conversation_id: int) -> list[Event]:
        return await self._read(lambda c: reads.events(c, conversation_id))

    async def count_events(self, customer_id: int, kind: str, since: datetime) -> int:
        return await self._read(lambda c: reads.count_events(c, customer_id, kind, to_ms(since)))

    async def unhandled_messages(self) -> list[Message]:
        return await self._read(reads.unhandled_messages)

    async def find_message(self, channel: ChannelKind, external_id: str) -> Message | None:
        return await self._read(lambda c: reads.message_by_external_id(c, channel, external_id))

    async def is_opted_out(self, identity: Identity) -> bool:
        return await self._read(lambda c: reads.opted_out(c, identity))

    @property
    def commit_stats(self) -> tuple[int, int]:
        """(batches committed, writes committed): writes/batches is the group size."""
        return self._writer.batches, self._writer.writes


_MESSAGE_COLUMNS = (
    "id", "conversation_id", "customer_id", "seq", "direction", "author", "channel", "text",
    "external_id", "confidence", "start_ms", "end_ms", "handled", "meta", "status",
    "next_attempt_at", "claimed_until", "created_at",
)  # fmt: skip


__all__ = ["SqliteStore"]
