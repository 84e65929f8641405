"""`RoutingStore` on PostgreSQL: the routing tables next to `PostgresStore`'s.

One `RoutingChange` is one transaction, as on SQLite. Console events are
numbered by a sequence; so that a console resuming "after seq N" never skips
one, the transactions that write them take one advisory lock just before
their inserts and keep it to their commit: events commit in the order of
their numbers, across every node.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

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
from gateway.store.pg_session import Conn
from gateway.store.postgres import PostgresStore
from gateway.store.routing_rows import (
    REP_SELECT,
    REPS_CHANNEL,
    console_from_row,
    entry_from_row,
    offer_from_row,
    rating_from_row,
    rep_from_row,
    rep_updates,
)
from gateway.store.rows import dumps, now_ms, to_dt, to_ms

CONSOLE_LOCK = 7411002  # pg_advisory_xact_lock key: console events commit in seq order


class PostgresRoutingStore:
    """Routing tables in `PostgresStore`'s database."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    # ------------------------------------------------------------------ reps

    async def add_rep(self, draft: RepDraft) -> Rep:
        async def op(conn: Conn) -> Rep:
            ts = now_ms()
            try:
                async with conn.transaction():  # a savepoint: the unique key answers
                    rep_id = await conn.fetchval(
                        "INSERT INTO reps (username, display_name, password_hash, skills, phone,"
                        " max_text, max_calls, created_at, role)"
                        " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) RETURNING id",
                        draft.username, draft.display_name, draft.password_hash,
                        dumps(list(draft.skills)), draft.phone, draft.max_text, draft.max_calls,
                        ts, draft.role.value,
                    )  # fmt: skip
            except asyncpg.exceptions.UniqueViolationError as exc:
                raise ConflictError(f"a rep named {draft.username!r} exists") from exc
            await conn.execute(
                "INSERT INTO rep_presence (rep_id, status, updated_at) VALUES ($1,$2,$3)",
                rep_id, Presence.OFFLINE.value, ts,
            )  # fmt: skip
            await _notify_reps(conn, rep_id)
            return await _rep(conn, rep_id)

        return await self._store.write(op)

    async def update_rep(self, username: str, changes: RepChanges) -> Rep:
        async def op(conn: Conn) -> Rep:
            ts = now_ms()
            updates = rep_updates(changes, ts)
            rep_id = await conn.fetchval(
                "SELECT id FROM reps WHERE username=$1 FOR UPDATE", username
            )
            if rep_id is None:
                raise NotFoundError(f"no rep named {username!r}")
            if updates:
                sets = ", ".join(f"{k}=${i}" for i, k in enumerate(updates, start=2))
                await conn.execute(f"UPDATE reps SET {sets} WHERE id=$1", rep_id,
                                   *updates.values())  # fmt: skip
                await _notify_reps(conn, rep_id)
            if changes.disabled or changes.password_hash is not None:
                # Disabled, or a new password: every login of theirs ends now.
                await conn.execute(
                    "UPDATE console_sessions SET revoked_at=$1 WHERE rep_id=$2"
                    " AND revoked_at IS NULL", ts, rep_id,
                )  # fmt: skip
            return await _rep(conn, rep_id)

        return await self._store.write(op)

    async def list_reps(self, *, include_disabled: bool = False) -> list[Rep]:
        where = "" if include_disabled else " WHERE r.disabled_at IS NULL"

        async def op(conn: Conn) -> list[Rep]:
            rows = await conn.fetch(f"{REP_SELECT}{where} ORDER BY r.id")
            return [rep_from_row(r) for r in rows]

        return await self._store.read(op)

    async def credentials(self, username: str) -> RepCredentials | None:
        async def op(conn: Conn) -> RepCredentials | None:
            row = await conn.fetchrow(
                "SELECT id, password_hash, disabled_at FROM reps WHERE username=$1", username
            )
            if row is None:
                return None
            return RepCredentials(rep_id=row["id"], password_hash=row["password_hash"],
                                  disabled=row["disabled_at"] is not None)  # fmt: skip

        return await self._store.read(op)

    # ----------------------------------------------------------------- apply

    async def apply(self, change: RoutingChange) -> Applied:
        return await self._store.write(lambda conn: self._apply(conn, change))

    async def _apply(self, conn: Conn, change: RoutingChange) -> Applied:
        ts = now_ms()
        conversation: Conversation | None = None
        messages: tuple[Message, ...] = ()
        if change.conversation_id is not None:
            turn = TurnRecord(
                conversation_id=change.conversation_id, expected_version=0,
                outbound=change.outbound, events=change.events, state=change.state,
                queue=change.queue,
            )  # fmt: skip
            stored = await self._store.turn_in(conn, turn)
            conversation, messages = stored.conversation, stored.messages
        entry = None
        if change.new_entry is not None:
            d = change.new_entry
            row = await conn.fetchrow(
                "INSERT INTO queue_entries (conversation_id, queue, kind, priority, from_rep_id,"
                " target_rep_id, note, enqueued_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) RETURNING *",
                d.conversation_id, d.queue, d.kind.value, d.priority, d.from_rep_id,
                d.target_rep_id, d.note, ts,
            )  # fmt: skip
            entry = entry_from_row(row)
        for up in change.entries:
            sets: dict[str, Any] = {}
            if up.rep_id is not None:
                sets.update(rep_id=up.rep_id, assigned_at=ts)
            if up.ended:
                sets.update(ended_at=ts, outcome=(up.outcome or Outcome.LEFT).value)
            if sets:
                cols = ", ".join(f"{k}=${i}" for i, k in enumerate(sets, start=2))
                done = await conn.execute(
                    f"UPDATE queue_entries SET {cols} WHERE id=$1 AND ended_at IS NULL",
                    up.entry_id, *sets.values(),
                )  # fmt: skip
                if done != "UPDATE 1":
                    raise ConflictError(f"queue entry {up.entry_id} has already ended")
        offer = None
        if change.new_offer is not None:
            o = change.new_offer
            entry_id = o.entry_id or (entry.id if entry else 0)
            row = await conn.fetchrow(
                "INSERT INTO offers (entry_id, rep_id, status, created_at, expires_at)"
                " VALUES ($1,$2,$3,$4,$5) RETURNING *",
                entry_id, o.rep_id, OfferStatus.PENDING.value, ts, to_ms(o.expires_at),
            )  # fmt: skip
            offer = offer_from_row(row)
            if o.announce is not None:
                data = {**o.announce, "offer_id": offer.id,
                        "expires_at": offer.expires_at.isoformat()}  # fmt: skip
                announced = ConsoleEventDraft(kind="offer", rep_id=o.rep_id, data=data)
                change = change.model_copy(update={"console": (announced, *change.console)})
        for ou in change.offers:
            if ou.expires_at is not None:
                await conn.execute(
                    "UPDATE offers SET expires_at=$2 WHERE id=$1 AND status='pending'",
                    ou.offer_id, to_ms(ou.expires_at),
                )  # fmt: skip
                continue
            done = await conn.execute(
                "UPDATE offers SET status=$2, decided_at=$3 WHERE id=$1 AND status='pending'",
                ou.offer_id, ou.status.value, ts,
            )  # fmt: skip
            if done != "UPDATE 1":
                raise ConflictError(f"offer {ou.offer_id} is no longer pending")
        rep = None
        if change.presence is not None:
            p = change.presence
            if p.status is not None:
                await conn.execute(
                    "UPDATE rep_presence SET status=$2, updated_at=$3 WHERE rep_id=$1",
                    p.rep_id, p.status.value, ts,
                )  # fmt: skip
            if p.busy:
                await conn.execute(
                    "UPDATE rep_presence SET last_busy_at=$2 WHERE rep_id=$1", p.rep_id, ts
                )
            rep = await _rep(conn, p.rep_id)
        if change.disposition is not None and change.conversation_id is not None:
            d2 = change.disposition
            await conn.execute(
                "INSERT INTO dispositions (conversation_id, rep_id, code, note, created_at)"
                " VALUES ($1,$2,$3,$4,$5)",
                change.conversation_id, d2.rep_id, d2.code, d2.note, ts,
            )  # fmt: skip
        if change.rating_request and conversation is not None:
            await conn.execute(
                "INSERT INTO ratings (conversation_id, customer_id, channel, requested_at)"
                " VALUES ($1,$2,$3,$4) ON CONFLICT (conversation_id) DO NOTHING",
                conversation.id, conversation.customer_id, conversation.channel.value, ts,
            )  # fmt: skip
        console: tuple[ConsoleEvent, ...] = ()
        if change.console:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", CONSOLE_LOCK)
            console = tuple([await _console(conn, d, ts) for d in change.console])
        return Applied(conversation=conversation, messages=messages, entry=entry, offer=offer,
                       rep=rep, console=console)  # fmt: skip

    # ----------------------------------------------------------------- reads

    async def open_entries(self) -> list[QueueEntry]:
        async def op(conn: Conn) -> list[QueueEntry]:
            rows = await conn.fetch(
                "SELECT * FROM queue_entries WHERE ended_at IS NULL ORDER BY id"
            )
            return [entry_from_row(r) for r in rows]

        return await self._store.read(op)

    async def pending_offers(self) -> list[Offer]:
        async def op(conn: Conn) -> list[Offer]:
            rows = await conn.fetch("SELECT * FROM offers WHERE status='pending' ORDER BY id")
            return [offer_from_row(r) for r in rows]

        return await self._store.read(op)

    async def orphaned_queued(self) -> list[int]:
        async def op(conn: Conn) -> list[int]:
            rows = await conn.fetch(
                "SELECT c.id FROM conversations c WHERE c.state='queued' AND NOT EXISTS"
                " (SELECT 1 FROM queue_entries e WHERE e.conversation_id=c.id"
                " AND e.ended_at IS NULL) ORDER BY c.id"
            )
            return [int(r["id"]) for r in rows]

        return await self._store.read(op)

    async def handle_times(self, limit: int) -> list[float]:
        async def op(conn: Conn) -> list[float]:
            rows = await conn.fetch(
                "SELECT ended_at - assigned_at AS ms FROM queue_entries"
                " WHERE assigned_at IS NOT NULL AND ended_at IS NOT NULL"
                " AND outcome IN ('closed', 'handed_back') ORDER BY ended_at DESC LIMIT $1",
                limit,
            )
            return [r["ms"] / 1000 for r in rows]

        return await self._store.read(op)

    async def console_events(
        self, rep_id: int, queues: tuple[str, ...], after: int, limit: int
    ) -> list[ConsoleEvent]:
        async def op(conn: Conn) -> list[ConsoleEvent]:
            rows = await conn.fetch(
                "SELECT * FROM console_events WHERE seq > $1 AND (rep_id = $2 OR (rep_id IS NULL"
                " AND (queue IS NULL OR queue = ANY($3::text[])))) ORDER BY seq LIMIT $4",
                after, rep_id, list(queues), limit,
            )  # fmt: skip
            return [console_from_row(r) for r in rows]

        return await self._store.read(op)

    async def console_since(self, after: int, limit: int) -> list[ConsoleEvent]:
        async def op(conn: Conn) -> list[ConsoleEvent]:
            rows = await conn.fetch(
                "SELECT * FROM console_events WHERE seq > $1 ORDER BY seq LIMIT $2", after, limit
            )
            return [console_from_row(r) for r in rows]

        return await self._store.read(op)

    async def last_console_seq(self) -> int:
        async def op(conn: Conn) -> int:
            return int(await conn.fetchval("SELECT COALESCE(MAX(seq), 0) FROM console_events"))

        return await self._store.read(op)

    async def conversations_awaiting(self, opened: str, closed: str) -> list[int]:
        async def op(conn: Conn) -> list[int]:
            rows = await conn.fetch(
                "SELECT conversation_id FROM events WHERE kind IN ($1, $2) GROUP BY"
                " conversation_id HAVING SUM((kind = $1)::int) > SUM((kind = $2)::int)"
                " ORDER BY conversation_id",
                opened, closed,
            )  # fmt: skip
            return [int(r["conversation_id"]) for r in rows]

        return await self._store.read(op)

    async def prune_console(self, before: datetime) -> int:
        async def op(conn: Conn) -> int:
            done = await conn.execute("DELETE FROM console_events WHERE created_at < $1",
                                      to_ms(before))  # fmt: skip
            await conn.execute(
                "DELETE FROM console_sessions WHERE expires_at < $1 OR revoked_at < $1",
                to_ms(before),
            )
            return int(done.split()[-1])

        return await self._store.write(op)

    # -------------------------------------------------------------- sessions

    async def create_session(self, session: Session) -> None:
        async def op(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO console_sessions (id, rep_id, csrf, created_at, expires_at)"
                " VALUES ($1,$2,$3,$4,$5)",
                session.id, session.rep_id, session.csrf, now_ms(), to_ms(session.expires_at),
            )  # fmt: skip

        await self._store.write(op)

    async def get_session(self, session_id: str) -> Session | None:
        async def op(conn: Conn) -> Session | None:
            row = await conn.fetchrow(
                "SELECT * FROM console_sessions WHERE id=$1 AND revoked_at IS NULL", session_id
            )
            if row is None:
                return None
            return Session(id=row["id"], rep_id=row["rep_id"], csrf=row["csrf"],
                           expires_at=to_dt(row["expires_at"]))  # fmt: skip

        return await self._store.read(op)

    async def revoke_session(self, session_id: str) -> None:
        async def op(conn: Conn) -> None:
            await conn.execute(
                "UPDATE console_sessions SET revoked_at=$2 WHERE id=$1", session_id, now_ms()
            )

        await self._store.write(op)

    # --------------------------------------------------------------- ratings

    async def rate(self, conversation_id: int, score: int) -> RatingTarget | None:
        async def op(conn: Conn) -> RatingTarget | None:
            row = await conn.fetchrow(
                "UPDATE ratings SET score=$2, rated_at=$3 WHERE conversation_id=$1 RETURNING *",
                conversation_id, score, now_ms(),
            )  # fmt: skip
            if row is None:
                return None
            await conn.execute(
                "INSERT INTO events (conversation_id, customer_id, kind, data, created_at)"
                " VALUES ($1,$2,$3,$4,$5)",
                conversation_id, row["customer_id"], "rating",
                dumps({"score": score, "channel": row["channel"]}), now_ms(),
            )  # fmt: skip
            return rating_from_row(row)

        return await self._store.write(op)

    async def pending_rating(self, customer_id: int, since: datetime) -> RatingTarget | None:
        async def op(conn: Conn) -> RatingTarget | None:
            row = await conn.fetchrow(
                "SELECT * FROM ratings WHERE customer_id=$1 AND score IS NULL"
                " AND requested_at>=$2 ORDER BY requested_at DESC LIMIT 1",
                customer_id, to_ms(since),
            )  # fmt: skip
            return None if row is None else rating_from_row(row)

        return await self._store.read(op)


async def _console(conn: Conn, draft: ConsoleEventDraft, ts: int) -> ConsoleEvent:
    seq = await conn.fetchval(
        "INSERT INTO console_events (rep_id, queue, kind, data, created_at)"
        " VALUES ($1,$2,$3,$4,$5) RETURNING seq",
        draft.rep_id, draft.queue, draft.kind, dumps(draft.data), ts,
    )  # fmt: skip
    return ConsoleEvent(seq=seq, rep_id=draft.rep_id, queue=draft.queue, kind=draft.kind,
                        data=draft.data, created_at=to_dt(ts))  # fmt: skip


async def _notify_reps(conn: Conn, rep_id: int) -> None:
    # Delivered at commit to every session LISTENing (the routing leader), never before.
    await conn.execute("SELECT pg_notify($1, $2)", REPS_CHANNEL, str(rep_id))


async def _rep(conn: Conn, rep_id: int) -> Rep:
    row = await conn.fetchrow(f"{REP_SELECT} WHERE r.id=$1", rep_id)
    if row is None:
        raise NotFoundError(f"no rep {rep_id}")
    return rep_from_row(row)


__all__ = ["PostgresRoutingStore"]
