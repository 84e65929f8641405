"""Merging and linking customer records on PostgreSQL, inside the caller's
transaction, with the rules of rules.py (the same as SQLite's merge.py and
linking.py). Customer rows are locked (`FOR UPDATE`) in id order, so two
transactions that touch the same two records never wait on each other in a
circle; a deadlock that happens anyway is retried by the store."""

from __future__ import annotations

from typing import Any

from gateway.errors import NotFoundError
from gateway.models import Identity, Verification
from gateway.protocols import LinkResult
from gateway.store.rows import dumps
from gateway.store.rules import (
    MERGED_TABLES,
    Holder,
    LinkPlan,
    merged_event,
    plan_link,
    renumbered,
)

Conn = Any  # asyncpg.Connection


async def lock_customers(conn: Conn, *customer_ids: int) -> dict[int, Any]:
    """Lock the customer rows (in id order); returns them by id (missing ones absent)."""
    rows = await conn.fetch(
        "SELECT * FROM customers WHERE id = ANY($1::int[]) ORDER BY id FOR UPDATE",
        sorted(set(customer_ids)),
    )
    return {int(r["id"]): r for r in rows}


async def merge_customers(
    conn: Conn, survivor: int, merged: int, *, reason: dict[str, Any], ts: int
) -> int:
    """Move everything of customer `merged` to `survivor` (both locked by the caller);
    returns how many messages moved."""
    last_seq = int(await conn.fetchval("SELECT last_seq FROM customers WHERE id=$1", survivor))
    latest = await conn.fetchval(
        "SELECT id FROM conversations WHERE customer_id=$1 ORDER BY id DESC LIMIT 1", merged
    )
    moved = [
        int(r["id"])
        for r in await conn.fetch(
            "SELECT id FROM messages WHERE customer_id=$1 ORDER BY seq", merged
        )
    ]
    if moved:
        await conn.executemany(
            "UPDATE messages SET customer_id=$1, seq=$2 WHERE id=$3",
            renumbered(survivor, last_seq, moved),
        )
    await conn.execute(
        "UPDATE customers SET last_seq=$1, display_name=COALESCE(display_name,"
        " (SELECT display_name FROM customers WHERE id=$2)) WHERE id=$3",
        last_seq + len(moved),
        merged,
        survivor,
    )
    for table in MERGED_TABLES:
        await conn.execute(
            f"UPDATE {table} SET customer_id=$1 WHERE customer_id=$2", survivor, merged
        )
    if latest is not None:
        data = merged_event(reason, merged, survivor, last_seq, len(moved))
        await conn.execute(
            "INSERT INTO events (conversation_id, customer_id, kind, data, created_at)"
            " VALUES ($1,$2,$3,$4,$5)",
            latest,
            survivor,
            "customer.merged",
            dumps(data),
            ts,
        )
    await conn.execute("DELETE FROM customers WHERE id=$1", merged)
    return len(moved)


async def link(
    conn: Conn, customer_id: int, identity: Identity, account_ref: str | None, *, ts: int
) -> LinkPlan:
    """`Store.link_identity` inside a transaction: see rules.plan_link."""
    row = await conn.fetchrow(
        "SELECT customer_id FROM identities WHERE kind=$1 AND value=$2",
        identity.kind.value,
        identity.value,
    )
    holder_id = int(row["customer_id"]) if row is not None else None
    locked = await lock_customers(conn, customer_id, *(() if holder_id is None else (holder_id,)))
    if customer_id not in locked:
        raise NotFoundError(f"no customer {customer_id}")
    held = await conn.fetchrow(
        "SELECT i.customer_id, i.verified, c.account_ref FROM identities i"
        " JOIN customers c ON c.id = i.customer_id WHERE i.kind=$1 AND i.value=$2",
        identity.kind.value,
        identity.value,
    )
    if (held["customer_id"] if held is not None else None) != holder_id:
        raise IdentityMoved  # changed hands before the lock: the store retries
    holder = None
    if held is not None:
        used = await conn.fetchval(
            "SELECT 1 FROM messages WHERE customer_id=$1 LIMIT 1", held["customer_id"]
        )
        holder = Holder(int(held["customer_id"]), Verification(held["verified"]),
                        held["account_ref"], used is not None)  # fmt: skip
    own_account = locked[customer_id]["account_ref"]
    plan = plan_link(customer_id, own_account, identity.verified, account_ref, holder)
    if plan.result is LinkResult.OTHER_ACCOUNT:
        return plan
    if plan.merge is not None:
        reason = {"identity": identity.key, "proof": identity.verified.value}
        await merge_customers(conn, customer_id, plan.merge, reason=reason, ts=ts)
    if plan.insert:
        await conn.execute(
            "INSERT INTO identities (customer_id, kind, value, verified, created_at)"
            " VALUES ($1,$2,$3,$4,$5)",
            customer_id,
            identity.kind.value,
            identity.value,
            identity.verified.value,
            ts,
        )
    else:
        assert plan.verified is not None
        await conn.execute(
            "UPDATE identities SET customer_id=$1, verified=$2 WHERE kind=$3 AND value=$4",
            customer_id,
            plan.verified.value,
            identity.kind.value,
            identity.value,
        )
    if plan.account_ref:
        await conn.execute(
            "UPDATE customers SET account_ref=$1 WHERE id=$2", plan.account_ref, customer_id
        )
    return plan


class IdentityMoved(Exception):
    """An identity changed hands between reading and locking: run the transaction again."""


__all__ = ["IdentityMoved", "link", "lock_customers", "merge_customers"]
