"""`RoutingStore` on the SQLite store's file, through its one writer thread."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from gateway.errors import ConflictError, NotFoundError
from gateway.models import Conversation, Message
from gateway.protocols import TurnRecord
from gateway.routing.models import (
    ConsoleEvent,
    ConsoleEventDraft,
    Offer,
    OfferStatus,
    Outcome,
    Presence,
    QueueEntry,
    Rep,
    RepChanges,
    RepCredentials,
    RepDraft,
    Session,
)
from gateway.routing.store import Applied, RatingTarget, RoutingChange
from gateway.store.routing_rows import (
    REP_SELECT,
    console_from_row,
    entry_from_row,
    offer_from_row,
    rating_from_row,
    rep_from_row,
    rep_updates,
)
from gateway.store.rows import dumps, now_ms, to_dt, to_ms
from gateway.store.sqlite import SqliteStore


class SqliteRoutingStore:
    """Routing tables in the same SQLite file as `SqliteStore`, written by its writer."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    # ------------------------------------------------------------------ reps

    async def add_rep(self, draft: RepDraft) -> Rep:
        def op(conn: sqlite3.Connection) -> Rep:
            ts = now_ms()
            try:
                cur = conn.execute(
                    "INSERT INTO reps (username, display_name, password_hash, skills, phone,"
                    " max_text, max_calls, created_at, role) VALUES (?,?,?,?,?,?,?,?,?)",
                    (draft.username, draft.display_name, draft.password_hash,
                     dumps(list(draft.skills)), draft.phone, draft.max_text, draft.max_calls,
                     ts, draft.role.value),
                )  # fmt: skip
            except sqlite3.IntegrityError as exc:
                raise ConflictError(f"a rep named {draft.username!r} exists") from exc
            rep_id = int(cur.lastrowid or 0)
            conn.execute(
                "INSERT INTO rep_presence (rep_id, status, updated_at) VALUES (?,?,?)",
                (rep_id, Presence.OFFLINE.value, ts),
            )
            return _rep(conn, rep_id)

        return await self._store.write(op)

    async def update_rep(self, username: str, changes: RepChanges) -> Rep:
        def op(conn: sqlite3.Connection) -> Rep:
            ts = now_ms()
            updates = rep_updates(changes, ts)
            row = conn.execute("SELECT id FROM reps WHERE username=?", (username,)).fetchone()
            if row is None:
                raise NotFoundError(f"no rep named {username!r}")
            if updates:
                sets = ", ".join(f"{k}=?" for k in updates)
                conn.execute(f"UPDATE reps SET {sets} WHERE id=?", (*updates.values(), row["id"]))
            if changes.disabled or changes.password_hash is not None:
                # Disabled, or a new password: every login of theirs ends now.
                conn.execute(
                    "UPDATE console_sessions SET revoked_at=? WHERE rep_id=? AND revoked_at"
                    " IS NULL", (ts, row["id"]),
                )  # fmt: skip
            return _rep(conn, row["id"])

        return await self._store.write(op)

    async def list_reps(self, *, include_disabled: bool = False) -> list[Rep]:
        where = "" if include_disabled else " WHERE r.disabled_at IS NULL"

        def op(conn: sqlite3.Connection) -> list[Rep]:
            rows = conn.execute(f"{REP_SELECT}{where} ORDER BY r.id")
            return [rep_from_row(r) for r in rows.fetchall()]

        return await self._store.read(op)

    async def credentials(self, username: str) -> RepCredentials | None:
        def op(conn: sqlite3.Connection) -> RepCredentials | None:
            row = conn.execute(
                "SELECT id, password_hash, disabled_at FROM reps WHERE username=?", (username,)
            ).fetchone()
            if row is None:
                return None
            return RepCredentials(
                rep_id=row["id"],
                password_hash=row["password_hash"],
                disabled=row["disabled_at"] is not None,
            )

        return await self._store.read(op)

    # ----------------------------------------------------------------- apply

    async def apply(self, change: RoutingChange) -> Applied:
        return await self._store.write(lambda conn: self._apply(conn, change))

    def _apply(self, conn: sqlite3.Connection, change: RoutingChange) -> Applied:
        ts = now_ms()
        conversation: Conversation | None = None
        messages: tuple[Message, ...] = ()
        if change.conversation_id is not None:
            turn = TurnRecord(
                conversation_id=change.conversation_id,
                expected_version=0,  # turn_in uses the current version
                outbound=change.outbound,
                events=change.events,
                state=change.state,
                queue=change.queue,
            )
            stored = self._store.turn_in(conn, turn)
            conversation, messages = stored.conversation, stored.messages
        entry = None
        if change.new_entry is not None:
            d = change.new_entry
            cur = conn.execute(
                "INSERT INTO queue_entries (conversation_id, queue, kind, priority, from_rep_id,"
                " target_rep_id, note, enqueued_at) VALUES (?,?,?,?,?,?,?,?)",
                (d.conversation_id, d.queue, d.kind.value, d.priority, d.from_rep_id,
                 d.target_rep_id, d.note, ts),
            )  # fmt: skip
            entry = _entry(conn, int(cur.lastrowid or 0))
        for up in change.entries:
            sets: dict[str, Any] = {}
            if up.rep_id is not None:
                sets.update(rep_id=up.rep_id, assigned_at=ts)
            if up.ended:
                sets.update(ended_at=ts, outcome=(up.outcome or Outcome.LEFT).value)
            if sets:
                cur = conn.execute(
                    f"UPDATE queue_entries SET {', '.join(f'{k}=?' for k in sets)}"
                    " WHERE id=? AND ended_at IS NULL",
                    (*sets.values(), up.entry_id),
                )
                if cur.rowcount != 1:
                    raise ConflictError(f"queue entry {up.entry_id} has already ended")
        offer = None
        if change.new_offer is not None:
            o = change.new_offer
            entry_id = o.entry_id or (entry.id if entry else 0)
            cur = conn.execute(
                "INSERT INTO offers (entry_id, rep_id, status, created_at, expires_at)"
                " VALUES (?,?,?,?,?)",
                (entry_id, o.rep_id, OfferStatus.PENDING.value, ts, to_ms(o.expires_at)),
            )
            offer = offer_from_row(
                conn.execute("SELECT * FROM offers WHERE id=?", (cur.lastrowid,)).fetchone()
            )
            if o.announce is not None:
                data = {**o.announce, "offer_id": offer.id,
                        "expires_at": offer.expires_at.isoformat()}  # fmt: skip
                announced = ConsoleEventDraft(kind="offer", rep_id=o.rep_id, data=data)
                change = change.model_copy(update={"console": (announced, *change.console)})
        for ou in change.offers:
            if ou.expires_at is not None:
                conn.execute(
                    "UPDATE offers SET expires_at=? WHERE id=? AND status='pending'",
                    (to_ms(ou.expires_at), ou.offer_id),
                )
                continue
            cur = conn.execute(
                "UPDATE offers SET status=?, decided_at=? WHERE id=? AND status='pending'",
                (ou.status.value, ts, ou.offer_id),
            )
            if cur.rowcount != 1:
                raise ConflictError(f"offer {ou.offer_id} is no longer pending")
        rep = None
        if change.presence is not None:
            p = change.presence
            if p.status is not None:
                conn.execute(
                    "UPDATE rep_presence SET status=?, updated_at=? WHERE rep_id=?",
                    (p.status.value, ts, p.rep_id),
                )
            if p.busy:
                conn.execute(
                    "UPDATE rep_presence SET last_busy_at=? WHERE rep_id=?", (ts, p.rep_id)
                )
            rep = _rep(conn, p.rep_id)
        if change.disposition is not None and change.conversation_id is not None:
            d2 = change.disposition
            conn.execute(
                "INSERT INTO dispositions (conversation_id, rep_id, code, note, created_at)"
                " VALUES (?,?,?,?,?)",
                (change.conversation_id, d2.rep_id, d2.code, d2.note, ts),
            )
        if change.rating_request and conversation is not None:
            conn.execute(
                "INSERT OR IGNORE INTO ratings (conversation_id, customer_id, channel,"
                " requested_at) VALUES (?,?,?,?)",
                (conversation.id, conversation.customer_id, conversation.channel.value, ts),
            )
        console = tuple(self._console(conn, d, ts) for d in change.console)
        return Applied(
            conversation=conversation,
            messages=messages,
            entry=entry,
            offer=offer,
            rep=rep,
            console=console,
        )

    @staticmethod
    def _console(conn: sqlite3.Connection, draft: ConsoleEventDraft, ts: int) -> ConsoleEvent:
        data = dumps(draft.data)
        cur = conn.execute(
            "INSERT INTO console_events (rep_id, queue, kind, data, created_at) VALUES (?,?,?,?,?)",
            (draft.rep_id, draft.queue, draft.kind, data, ts),
        )
        return ConsoleEvent(
            seq=int(cur.lastrowid or 0),
            rep_id=draft.rep_id,
            queue=draft.queue,
            kind=draft.kind,
            data=draft.data,
            created_at=to_dt(ts),
        )

    # ----------------------------------------------------------------- reads

    async def open_entries(self) -> list[QueueEntry]:
        def op(conn: sqlite3.Connection) -> list[QueueEntry]:
            rows = conn.execute(
                "SELECT * FROM queue_entries WHERE ended_at IS NULL ORDER BY id"
            ).fetchall()
            return [entry_from_row(r) for r in rows]

        return await self._store.read(op)

    async def pending_offers(self) -> list[Offer]:
        def op(conn: sqlite3.Connection) -> list[Offer]:
            rows = conn.execute("SELECT * FROM offers WHERE status='pending' ORDER BY id")
            return [offer_from_row(r) for r in rows.fetchall()]

        return await self._store.read(op)

    async def orphaned_queued(self) -> list[int]:
        def op(conn: sqlite3.Connection) -> list[int]:
            rows = conn.execute(
                "SELECT c.id FROM conversations c WHERE c.state='queued' AND NOT EXISTS"
                " (SELECT 1 FROM queue_entries e WHERE e.conversation_id=c.id"
                " AND e.ended_at IS NULL) ORDER BY c.id"
            ).fetchall()
            return [int(r["id"]) for r in rows]

        return await self._store.read(op)

    async def handle_times(self, limit: int) -> list[float]:
        def op(conn: sqlite3.Connection) -> list[float]:
            rows = conn.execute(
                "SELECT ended_at - assigned_at AS ms FROM queue_entries"
                " WHERE assigned_at IS NOT NULL AND ended_at IS NOT NULL"
                " AND outcome IN ('closed', 'handed_back') ORDER BY ended_at DESC LIMIT ?",
                (limit,),
            ).fetchall()
            return [r["ms"] / 1000 for r in rows]

        return await self._store.read(op)

    async def console_events(
        self, rep_id: int, queues: tuple[str, ...], after: int, limit: int
    ) -> list[ConsoleEvent]:
        marks = ",".join("?" * len(queues)) or "NULL"

        def op(conn: sqlite3.Connection) -> list[ConsoleEvent]:
            rows = conn.execute(
                "SELECT * FROM console_events WHERE seq > ? AND (rep_id = ? OR (rep_id IS NULL"
                f" AND (queue IS NULL OR queue IN ({marks})))) ORDER BY seq LIMIT ?",
                (after, rep_id, *queues, limit),
            ).fetchall()
            return [console_from_row(r) for r in rows]

        return await self._store.read(op)

    async def console_since(self, after: int, limit: int) -> list[ConsoleEvent]:
        def op(conn: sqlite3.Connection) -> list[ConsoleEvent]:
            rows = conn.execute(
                "SELECT * FROM console_events WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
            ).fetchall()
            return [console_from_row(r) for r in rows]

        return await self._store.read(op)

    async def last_console_seq(self) -> int:
        def op(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT MAX(seq) AS seq FROM console_events").fetchone()
            return int(row["seq"] or 0)

        return await self._store.read(op)

    async def conversations_awaiting(self, opened: str, closed: str) -> list[int]:
        def op(conn: sqlite3.Connection) -> list[int]:
            rows = conn.execute(
                "SELECT conversation_id FROM events WHERE kind IN (?, ?) GROUP BY conversation_id"
                " HAVING SUM(kind = ?) > SUM(kind = ?) ORDER BY conversation_id",
                (opened, closed, opened, closed),
            ).fetchall()
            return [int(r["conversation_id"]) for r in rows]

        return await self._store.read(op)

    async def prune_console(self, before: datetime) -> int:
        def op(conn: sqlite3.Connection) -> int:
            cur = conn.execute("DELETE FROM console_events WHERE created_at < ?", (to_ms(before),))
            conn.execute(
                "DELETE FROM console_sessions WHERE expires_at < ? OR revoked_at < ?",
                (to_ms(before), to_ms(before)),
            )
            return cur.rowcount

        return await self._store.write(op)

    # -------------------------------------------------------------- sessions

    async def create_session(self, session: Session) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO console_sessions (id, rep_id, csrf, created_at, expires_at)"
                " VALUES (?,?,?,?,?)",
                (session.id, session.rep_id, session.csrf, now_ms(), to_ms(session.expires_at)),
            )

        await self._store.write(op)

    async def get_session(self, session_id: str) -> Session | None:
        def op(conn: sqlite3.Connection) -> Session | None:
            row = conn.execute(
                "SELECT * FROM console_sessions WHERE id=? AND revoked_at IS NULL", (session_id,)
            ).fetchone()
            if row is None:
                return None
            return Session(
                id=row["id"], rep_id=row["rep_id"], csrf=row["csrf"],
                expires_at=to_dt(row["expires_at"]),
            )  # fmt: skip

        return await self._store.read(op)

    async def revoke_session(self, session_id: str) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE console_sessions SET revoked_at=? WHERE id=?", (now_ms(), session_id)
            )

        await self._store.write(op)

    # --------------------------------------------------------------- ratings

    async def rate(self, conversation_id: int, score: int) -> RatingTarget | None:
        def op(conn: sqlite3.Connection) -> RatingTarget | None:
            cur = conn.execute(
                "UPDATE ratings SET score=?, rated_at=? WHERE conversation_id=?",
                (score, now_ms(), conversation_id),
            )
            if cur.rowcount != 1:
                return None
            row = conn.execute(
                "SELECT * FROM ratings WHERE conversation_id=?", (conversation_id,)
            ).fetchone()
            conn.execute(
                "INSERT INTO events (conversation_id, customer_id, kind, data, created_at)"
                " VALUES (?,?,?,?,?)",
                (conversation_id, row["customer_id"], "rating",
                 dumps({"score": score, "channel": row["channel"]}), now_ms()),
            )  # fmt: skip
            return rating_from_row(row)

        return await self._store.write(op)

    async def pending_rating(self, customer_id: int, since: datetime) -> RatingTarget | None:
        def op(conn: sqlite3.Connection) -> RatingTarget | None:
            row = conn.execute(
                "SELECT * FROM ratings WHERE customer_id=? AND score IS NULL AND requested_at>=?"
                " ORDER BY requested_at DESC LIMIT 1",
                (customer_id, to_ms(since)),
            ).fetchone()
            return None if row is None else rating_from_row(row)

        return await self._store.read(op)


def _rep(conn: sqlite3.Connection, rep_id: int) -> Rep:
    row = conn.execute(f"{REP_SELECT} WHERE r.id=?", (rep_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no rep {rep_id}")
    return rep_from_row(row)


def _entry(conn: sqlite3.Connection, entry_id: int) -> QueueEntry:
    row = conn.execute("SELECT * FROM queue_entries WHERE id=?", (entry_id,)).fetchone()
    return entry_from_row(row)


__all__ = ["SqliteRoutingStore"]
