"""The embedded store: SQLite in WAL mode, one process.

Writes go through one writer thread with group commit (see `writer.py`); reads
run on a small pool of read-only connections, which WAL lets proceed while the
writer commits. Because this process is the only writer of the file (a lock
file enforces it), the writer thread keeps caches of identities, customers and
open conversations that are always current, so the hot path of a message is a
couple of inserts rather than a round of lookups.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
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
    ConversationState,
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
    TurnRecord,
    TurnStored,
)
from gateway.store import linking, migrate
from gateway.store import sqlite_reads as reads
from gateway.store.merge import merge_customers
from gateway.store.rows import (
    conversation_from_row,
    customer_from_row,
    dumps,
    identity_from_row,
    message_from_row,
    message_meta,
    now_ms,
    to_ms,
)
from gateway.store.rules import (
    delivery_failed,
    delivery_moves,
    raised_verification,
    turn_changes,
    version_conflict,
)
from gateway.store.writer import GroupCommitWriter

log = logging.getLogger(__name__)

T = TypeVar("T")
_CACHE_MAX = 100_000

_INSERT_MESSAGE = (
    "INSERT INTO messages (conversation_id, customer_id, seq, direction, author, channel, text,"
    " external_id, confidence, start_ms, end_ms, handled, meta, created_at)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return {col[0]: value for col, value in zip(cursor.description, row, strict=True)}


class SqliteStore:
    """`Store` on an SQLite file. Open with `SqliteStore.open(path)`."""

    def __init__(self, path: Path, *, synchronous: str = "FULL", batch_max: int = 256) -> None:
        self.path = path
        self._synchronous = synchronous
        self._lock_file = _acquire_lock(path)
        try:
            migrate.upgrade(f"sqlite:///{path}")
        except Exception as exc:
            self._lock_file.close()
            raise StoreError(f"cannot migrate the database at {path}: {exc}") from exc
        # Writer-thread caches; touched only from the writer thread.
        self._ident: dict[str, int] = {}
        self._cust: dict[int, dict[str, Any]] = {}
        self._open: dict[int, dict[str, Any] | None] = {}
        self._conv: dict[int, dict[str, Any]] = {}
        self._writer = GroupCommitWriter(
            self._connect_writer, batch_max=batch_max, on_rollback=self._drop_caches
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
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.row_factory = _dict_row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=5000")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.row_factory = _dict_row
            conn.execute("PRAGMA query_only=ON")
            conn.execute("PRAGMA busy_timeout=5000")
            self._local.conn = conn
            self._reader_conns.append(conn)
        return conn

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, lambda: fn(self._reader()))

    def _drop_caches(self) -> None:
        self._ident.clear()
        self._cust.clear()
        self._open.clear()
        self._conv.clear()

    def _trim_caches(self) -> None:
        if len(self._cust) > _CACHE_MAX or len(self._conv) > _CACHE_MAX:
            self._drop_caches()

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._writer.close)
        self._readers.shutdown(wait=True)
        for conn in self._reader_conns:
            conn.close()
        self._lock_file.close()

    # ------------------------------------------------------ writer helpers

    def _customer(self, conn: sqlite3.Connection, customer_id: int) -> dict[str, Any]:
        cust = self._cust.get(customer_id)
        if cust is None:
            row = conn.execute("SELECT * FROM customers WHERE id=?", (customer_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no customer {customer_id}")
            idents = conn.execute(
                "SELECT kind, value, verified FROM identities WHERE customer_id=? ORDER BY id",
                (customer_id,),
            ).fetchall()
            row["identities"] = [identity_from_row(r) for r in idents]
            self._cust[customer_id] = cust = row
        return cust

    def _open_conversation(
        self, conn: sqlite3.Connection, customer_id: int
    ) -> dict[str, Any] | None:
        if customer_id in self._open:
            return self._open[customer_id]
        row: dict[str, Any] | None = conn.execute(
            "SELECT * FROM conversations WHERE customer_id=? AND state != 'closed'"
            " ORDER BY id DESC LIMIT 1",
            (customer_id,),
        ).fetchone()
        self._open[customer_id] = row
        if row is not None:
            self._conv[row["id"]] = row
        return row

    def _conversation(self, conn: sqlite3.Connection, conversation_id: int) -> dict[str, Any]:
        conv = self._conv.get(conversation_id)
        if conv is None:
            conv = conn.execute(
                "SELECT * FROM conversations WHERE id=?", (conversation_id,)
            ).fetchone()
            if conv is None:
                raise NotFoundError(f"no conversation {conversation_id}")
            self._conv[conversation_id] = conv
        return conv

    def _next_seq(self, conn: sqlite3.Connection, cust: dict[str, Any]) -> int:
        seq = int(cust["last_seq"]) + 1
        conn.execute("UPDATE customers SET last_seq=? WHERE id=?", (seq, cust["id"]))
        cust["last_seq"] = seq
        return seq

    def _snapshot_customer(self, cust: dict[str, Any]) -> Customer:
        return customer_from_row(cust, cust["identities"])

    # ---------------------------------------------------------------- ingest

    async def ingest(self, message: InboundMessage) -> Ingested:
        return await self._writer.submit(lambda conn: self._ingest(conn, message))

    def _ingest(self, conn: sqlite3.Connection, msg: InboundMessage) -> Ingested:
        self._trim_caches()
        if msg.external_id is not None:
            dup = conn.execute(
                "SELECT * FROM messages WHERE channel=? AND external_id=?",
                (msg.channel.value, msg.external_id),
            ).fetchone()
            if dup is not None:
                cust = self._customer(conn, dup["customer_id"])
                conv = self._conversation(conn, dup["conversation_id"])
                return Ingested(
                    customer=self._snapshot_customer(cust),
                    conversation=conversation_from_row(conv),
                    message=message_from_row(dup),
                    duplicate=True,
                    handled=bool(dup["handled"]),
                )
        ts = now_ms()
        cust, created = self._resolve_customer(conn, msg, ts)
        conv = self._conversation_for(conn, cust["id"], msg, ts)
        self._move_to_channel(conn, conv, msg.channel, ts)
        seq = self._next_seq(conn, cust)
        timing = msg.timing
        params = (
            conv["id"], cust["id"], seq, Direction.INBOUND.value, "customer",
            msg.channel.value, msg.text, msg.external_id, msg.confidence,
            timing.start_ms if timing else None, timing.end_ms if timing else None,
            0, message_meta(msg.attachments), ts,
        )  # fmt: skip
        cur = conn.execute(_INSERT_MESSAGE, params)
        row = dict(zip(_MESSAGE_COLUMNS, (cur.lastrowid, *params), strict=True))
        return Ingested(
            customer=self._snapshot_customer(cust),
            conversation=conversation_from_row(conv),
            message=message_from_row(row),
            created_customer=created,
        )

    def _conversation_for(
        self, conn: sqlite3.Connection, customer_id: int, msg: InboundMessage, ts: int
    ) -> dict[str, Any]:
        """The conversation `msg` joins: its target, the open one, or a new one."""
        conv = self._target_conversation(conn, customer_id, msg)
        if conv is None and not msg.new_conversation:
            conv = self._open_conversation(conn, customer_id)
        if conv is None:
            conv = self._start_conversation(conn, customer_id, msg.channel, ts)
        return conv

    def _target_conversation(
        self, conn: sqlite3.Connection, customer_id: int, msg: InboundMessage
    ) -> dict[str, Any] | None:
        """The conversation `msg` asks to continue, if it is this customer's and open."""
        if msg.conversation_id is None:
            return None
        try:
            conv = self._conversation(conn, msg.conversation_id)
        except NotFoundError:
            return None
        if conv["customer_id"] != customer_id or conv["state"] == ConversationState.CLOSED.value:
            return None
        return conv

    def _move_to_channel(
        self, conn: sqlite3.Connection, conv: dict[str, Any], channel: ChannelKind, ts: int
    ) -> None:
        """The customer is on `channel` now: replies go there."""
        if conv["channel"] == channel.value:
            return
        channels = json.loads(conv["channels"])
        if channel.value not in channels:
            channels.append(channel.value)
        conn.execute(
            "UPDATE conversations SET channel=?, channels=?, updated_at=? WHERE id=?",
            (channel.value, dumps(channels), ts, conv["id"]),
        )
        conv.update(channel=channel.value, channels=dumps(channels), updated_at=ts)

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
        return await self._writer.submit(lambda conn: self._open_session(conn, probe))

    def _open_session(self, conn: sqlite3.Connection, probe: InboundMessage) -> OpenedSession:
        self._trim_caches()
        ts = now_ms()
        cust, created = self._resolve_customer(conn, probe, ts)
        conv = self._open_conversation(conn, cust["id"])
        started = conv is None
        if conv is None:
            conv = self._start_conversation(conn, cust["id"], probe.channel, ts)
        self._move_to_channel(conn, conv, probe.channel, ts)
        return OpenedSession(
            customer=self._snapshot_customer(cust),
            conversation=conversation_from_row(conv),
            created_customer=created,
            created_conversation=started,
        )

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
            self._insert_event(conn, row["conversation_id"], row["customer_id"], "message.cut",
                               data, now_ms())  # fmt: skip
            row["text"] = text
        if timing is not None:
            conn.execute(
                "UPDATE messages SET start_ms=?, end_ms=? WHERE id=?",
                (timing.start_ms, timing.end_ms, message_id),
            )
            row.update(start_ms=timing.start_ms, end_ms=timing.end_ms)
        return message_from_row(row)

    def _resolve_customer(
        self, conn: sqlite3.Connection, msg: InboundMessage, ts: int
    ) -> tuple[dict[str, Any], bool]:
        ident = msg.identity
        key = ident.key
        customer_id = self._ident.get(key)
        if customer_id is None:
            row = conn.execute(
                "SELECT customer_id, verified FROM identities WHERE kind=? AND value=?",
                (ident.kind.value, ident.value),
            ).fetchone()
            if row is not None:
                customer_id = row["customer_id"]
        if customer_id is not None:
            self._ident[key] = customer_id
            cust = self._link_account(conn, self._customer(conn, customer_id), msg, ts)
            self._refresh_customer(conn, cust, msg)
            return cust, False
        created = False
        if msg.account_ref is not None:
            row = conn.execute(
                "SELECT id FROM customers WHERE account_ref=? ORDER BY id LIMIT 1",
                (msg.account_ref,),
            ).fetchone()
            customer_id = row["id"] if row else None
        if customer_id is None:
            cur = conn.execute(
                "INSERT INTO customers (display_name, account_ref, last_seq, created_at)"
                " VALUES (?,?,0,?)",
                (msg.display_name, msg.account_ref, ts),
            )
            customer_id = int(cur.lastrowid or 0)
            created = True
        conn.execute(
            "INSERT INTO identities (customer_id, kind, value, verified, created_at)"
            " VALUES (?,?,?,?,?)",
            (customer_id, ident.kind.value, ident.value, ident.verified.value, ts),
        )
        self._cust.pop(customer_id, None)
        self._ident[key] = customer_id
        return self._customer(conn, customer_id), created

    def _link_account(
        self, conn: sqlite3.Connection, cust: dict[str, Any], msg: InboundMessage, ts: int
    ) -> dict[str, Any]:
        """A known identity now linked to an account that already has a customer:
        the two records are one person, merged into the account's (see merge.py)."""
        ref = msg.account_ref
        if ref is None or cust["account_ref"] is not None:
            if ref is not None and cust["account_ref"] != ref:
                # Never re-link on a lookup: a number may have moved to another account.
                log.warning("customer %s is linked to another account than the one %s names",
                            cust["id"], msg.identity.key)  # fmt: skip
            return cust
        row = conn.execute(
            "SELECT id FROM customers WHERE account_ref=? AND id != ? ORDER BY id LIMIT 1",
            (ref, cust["id"]),
        ).fetchone()
        if row is None:
            return cust  # _refresh_customer links this customer itself
        survivor = int(row["id"])
        reason = {"account_ref": ref, "identity": msg.identity.key}
        moved = merge_customers(conn, survivor, cust["id"], reason=reason, ts=ts)
        log.info("merged customer %s into %s (account %s, %d messages)",
                 cust["id"], survivor, ref, moved)  # fmt: skip
        self._drop_caches()  # rows moved owner; the caches reload inside this transaction
        return self._customer(conn, survivor)

    def _refresh_customer(
        self, conn: sqlite3.Connection, cust: dict[str, Any], msg: InboundMessage
    ) -> None:
        """Record stronger verification, a first name or an account link."""
        ident = msg.identity
        known = next((i for i in cust["identities"] if i.key == ident.key), None)
        if known is not None and raised_verification(known.verified, ident.verified):
            conn.execute(
                "UPDATE identities SET verified=? WHERE kind=? AND value=?",
                (ident.verified.value, ident.kind.value, ident.value),
            )
            cust["identities"] = [ident if i.key == ident.key else i for i in cust["identities"]]
        if msg.display_name and not cust["display_name"]:
            conn.execute(
                "UPDATE customers SET display_name=? WHERE id=?", (msg.display_name, cust["id"])
            )
            cust["display_name"] = msg.display_name
        if msg.account_ref and not cust["account_ref"]:
            conn.execute(
                "UPDATE customers SET account_ref=? WHERE id=?", (msg.account_ref, cust["id"])
            )
            cust["account_ref"] = msg.account_ref

    def _start_conversation(
        self, conn: sqlite3.Connection, customer_id: int, channel: ChannelKind, ts: int
    ) -> dict[str, Any]:
        row: dict[str, Any] = {
            "customer_id": customer_id,
            "state": ConversationState.BOT.value,
            "channel": channel.value,
            "channels": dumps([channel.value]),
            "queue": None,
            "brief": None,
            "agent_state": "{}",
            "version": 0,
            "created_at": ts,
            "updated_at": ts,
            "closed_at": None,
        }
        cur = conn.execute(
            f"INSERT INTO conversations ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
            tuple(row.values()),
        )
        row["id"] = int(cur.lastrowid or 0)
        self._conv[row["id"]] = row
        self._open[customer_id] = row
        self._insert_event(conn, row["id"], customer_id, "conversation.started",
                           {"channel": channel.value}, ts)  # fmt: skip
        return row

    def _insert_event(
        self, conn: sqlite3.Connection, conversation_id: int, customer_id: int,
        kind: str, data: dict[str, Any], ts: int,
    ) -> None:  # fmt: skip
        conn.execute(
            "INSERT INTO events (conversation_id, customer_id, kind, data, created_at)"
            " VALUES (?,?,?,?,?)",
            (conversation_id, customer_id, kind, dumps(data), ts),
        )

    # ------------------------------------------------------------ record_turn

    async def record_turn(self, turn: TurnRecord) -> TurnStored:
        return await self._writer.submit(lambda conn: self._record_turn(conn, turn))

    def _record_turn(self, conn: sqlite3.Connection, turn: TurnRecord) -> TurnStored:
        conv = self._conversation(conn, turn.conversation_id)
        conflict = version_conflict(conv["id"], conv["version"], turn.expected_version)
        if conflict is not None:
            raise ConflictError(conflict)
        cust = self._customer(conn, conv["customer_id"])
        ts = now_ms()
        stored: list[Message] = []
        for draft in turn.outbound:
            seq = self._next_seq(conn, cust)
            params = (
                conv["id"], cust["id"], seq, draft.direction.value, draft.author.value,
                draft.channel.value, draft.text, None, None, None, None, 1, None, ts,
            )  # fmt: skip
            cur = conn.execute(_INSERT_MESSAGE, params)
            stored.append(
                message_from_row(dict(zip(_MESSAGE_COLUMNS, (cur.lastrowid, *params), strict=True)))
            )
        for event in turn.events:
            self._insert_event(conn, conv["id"], cust["id"], event.kind, event.data, ts)
        if turn.handled_message_id is not None:
            conn.execute("UPDATE messages SET handled=1 WHERE id=?", (turn.handled_message_id,))
        changes = turn_changes(conv, turn, ts)
        updates = changes.updates
        if changes.state_event is not None:
            self._insert_event(conn, conv["id"], cust["id"], "state.changed",
                               changes.state_event, ts)  # fmt: skip
        if changes.closing:
            self._open[cust["id"]] = None
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
        def op(conn: sqlite3.Connection) -> Message | None:
            row = conn.execute(
                "SELECT id FROM messages WHERE channel=? AND external_id=?",
                (channel.value, external_id),
            ).fetchone()
            if row is None:
                return None
            return self._set_delivery(conn, row["id"], status, None, error_code)

        return await self._writer.submit(op)

    def _set_delivery(
        self, conn: sqlite3.Connection, message_id: int, status: DeliveryStatus,
        external_id: str | None, error_code: str | None,
    ) -> Message:  # fmt: skip
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
            if delivery_failed(status):
                data = {"message_id": message_id, "status": status.value, "error_code": error_code}
                self._insert_event(conn, row["conversation_id"], row["customer_id"],
                                   "delivery.failed", data, now_ms())  # fmt: skip
        return message_from_row(row)

    async def set_opt_out(self, identity: Identity, opted_out: bool) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE identities SET opted_out_at=? WHERE kind=? AND value=?",
                (now_ms() if opted_out else None, identity.kind.value, identity.value),
            )
            return cur.rowcount > 0

        return await self._writer.submit(op)

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
                self._drop_caches()  # rows moved owner; the caches reload inside this transaction
            elif done.result in (LinkResult.LINKED, LinkResult.ALREADY):
                self._ident[identity.key] = customer_id
                self._cust.pop(customer_id, None)
                if done.moved_from is not None:
                    self._cust.pop(done.moved_from, None)
            return Linked(
                result=done.result,
                customer=self._snapshot_customer(self._customer(conn, customer_id)),
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
        conv = self._conversation(conn, turn.conversation_id)
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
    "external_id", "confidence", "start_ms", "end_ms", "handled", "meta", "created_at",
)  # fmt: skip


def _acquire_lock(db_path: Path) -> Any:
    """Only one process may write an SQLite store: the writer caches assume it."""
    lock_path = db_path.with_name(db_path.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(lock_path, "a+")  # noqa: SIM115 - held open for the store's lifetime
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        handle.close()
        raise StoreError(
            f"another gateway process is using {db_path}; an SQLite store has one writer."
            " Stop the other process, or use PostgreSQL for several nodes."
        ) from exc
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


__all__ = ["SqliteStore"]
