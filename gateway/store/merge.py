"""Merging two customer records that turn out to be one person (writer thread only).

This happens when an identity that already has a customer of its own (say an
email address that wrote in while the business backend was down) is linked to
a backend account whose customer exists already (the caller who phoned this
morning), or when a customer proves with a one-time code that they receive the
messages of an identity another record holds (linking.py; the customer who
proved survives). Everything of the newcomer moves to the surviving customer,
in the writer's transaction, and the newcomer's row is deleted:

- identities, conversations and events change owner; conversations keep their
  messages, state and agent state (a customer may hold several open ones, as
  with email threads);
- messages change owner and are renumbered after the survivor's `last_seq`,
  in their own order. The survivor's numbers never change, so a client that
  resumes the survivor's history "after seq N" stays correct (it receives the
  merged messages as new ones), and per-customer numbering stays gap-free and
  unique without rewriting anyone's existing rows;
- a `customer.merged` event on the newcomer's latest conversation records
  what happened (old id, the seq range the merged messages now have).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from gateway.store.rows import dumps
from gateway.store.rules import MERGED_TABLES, merged_event, renumbered


def merge_customers(
    conn: sqlite3.Connection, survivor: int, merged: int, *, reason: dict[str, Any], ts: int
) -> int:
    """Move everything of customer `merged` to `survivor`; returns how many
    messages moved. Runs inside the caller's transaction (PostgreSQL: pg_merge.py,
    same rules from rules.py)."""
    last_seq = int(
        conn.execute("SELECT last_seq FROM customers WHERE id=?", (survivor,)).fetchone()[
            "last_seq"
        ]
    )
    latest = conn.execute(
        "SELECT id FROM conversations WHERE customer_id=? ORDER BY id DESC LIMIT 1", (merged,)
    ).fetchone()
    moved = [
        int(r["id"])
        for r in conn.execute(
            "SELECT id FROM messages WHERE customer_id=? ORDER BY seq", (merged,)
        ).fetchall()
    ]
    conn.executemany(
        "UPDATE messages SET customer_id=?, seq=? WHERE id=?",
        renumbered(survivor, last_seq, moved),
    )
    conn.execute(
        "UPDATE customers SET last_seq=?, display_name=COALESCE(display_name,"
        " (SELECT display_name FROM customers WHERE id=?)) WHERE id=?",
        (last_seq + len(moved), merged, survivor),
    )
    for table in MERGED_TABLES:
        conn.execute(f"UPDATE {table} SET customer_id=? WHERE customer_id=?", (survivor, merged))
    if latest is not None:
        data = merged_event(reason, merged, survivor, last_seq, len(moved))
        conn.execute(
            "INSERT INTO events (conversation_id, customer_id, kind, data, created_at)"
            " VALUES (?,?,?,?,?)",
            (latest["id"], survivor, "customer.merged", dumps(data), ts),
        )
    conn.execute("DELETE FROM customers WHERE id=?", (merged,))
    return len(moved)


__all__ = ["merge_customers"]
