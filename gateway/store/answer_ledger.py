"""The email answer ledger (table `email_answers`, 0007) on SQLite and PostgreSQL.

`take(sender, domain, ...)` records one automatic answer to `sender` unless that would
pass a cap: the answers to that address, to its whole domain, or in all, within the
window. It answers None when the answer was recorded, else the name of the cap that
held it back ("sender", "domain" or "total"). Checking and recording happen in one
transaction, serialised (SQLite's one writer; a PostgreSQL advisory lock across nodes),
so two nodes never both take the last answer. Rows older than the window are deleted
as it goes, so the table holds one window's answers at most.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from gateway.store.rows import now_ms

if TYPE_CHECKING:
    from gateway.store.postgres import PostgresStore
    from gateway.store.sqlite import SqliteStore

ANSWERS_LOCK = 7411007  # pg_advisory_xact_lock key: one taker at a time, on every node
Caps = tuple[int, int, int]  # per sender, per domain, in all


def _held_back(counts: tuple[int, int, int], caps: Caps) -> str | None:
    for name, count, cap in zip(("sender", "domain", "total"), counts, caps, strict=True):
        if count >= cap:
            return name
    return None


class SqliteAnswerLedger:
    """The ledger in the SQLite store's file, through its one writer thread."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    async def take(self, sender: str, domain: str, *, window_s: float, caps: Caps) -> str | None:
        def op(conn: sqlite3.Connection) -> str | None:
            now = now_ms()
            since = now - int(window_s * 1000)
            conn.execute("DELETE FROM email_answers WHERE created_at < ?", (since,))
            counts = tuple(
                int(conn.execute(sql, args).fetchone()["n"])
                for sql, args in (
                    ("SELECT count(*) AS n FROM email_answers WHERE sender=? AND created_at>=?",
                     (sender, since)),
                    ("SELECT count(*) AS n FROM email_answers WHERE domain=? AND created_at>=?",
                     (domain, since)),
                    ("SELECT count(*) AS n FROM email_answers WHERE created_at>=?", (since,)),
                )
            )  # fmt: skip
            held = _held_back((counts[0], counts[1], counts[2]), caps)
            if held is None:
                conn.execute(
                    "INSERT INTO email_answers (sender, domain, created_at) VALUES (?,?,?)",
                    (sender, domain, now),
                )
            return held

        return await self._store.write(op)


class PostgresAnswerLedger:
    """The ledger in the PostgreSQL store, serialised across nodes by an advisory lock."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    async def take(self, sender: str, domain: str, *, window_s: float, caps: Caps) -> str | None:
        async def op(conn: Any) -> str | None:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", ANSWERS_LOCK)
            now = now_ms()
            since = now - int(window_s * 1000)
            await conn.execute("DELETE FROM email_answers WHERE created_at < $1", since)
            row = await conn.fetchrow(
                "SELECT"
                " (SELECT count(*) FROM email_answers WHERE sender=$1 AND created_at>=$3),"
                " (SELECT count(*) FROM email_answers WHERE domain=$2 AND created_at>=$3),"
                " (SELECT count(*) FROM email_answers WHERE created_at>=$3)",
                sender, domain, since,
            )  # fmt: skip
            held = _held_back((int(row[0]), int(row[1]), int(row[2])), caps)
            if held is None:
                await conn.execute(
                    "INSERT INTO email_answers (sender, domain, created_at) VALUES ($1,$2,$3)",
                    sender, domain, now,
                )  # fmt: skip
            return held

        return await self._store.write(op)


__all__ = ["ANSWERS_LOCK", "PostgresAnswerLedger", "SqliteAnswerLedger"]
