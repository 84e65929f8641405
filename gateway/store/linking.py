"""`Store.link_identity` for SQLite: run on the writer thread, inside its transaction.

A one-time code proves that the customer receives the identity's messages, so
when another customer record already holds it, the two records are one person
and are merged exactly as backend auto-linking merges them (merge.py, same
transaction, same renumbering: the proving customer survives and keeps its
sequence numbers, the other record's messages are renumbered after them).
The only refusal is two records tied to *different* business accounts
(`OTHER_ACCOUNT`): a code proves control of a number or address, not that
two accounts are one, and nothing changes. An identity held by a record with
no messages at all (an empty session) is simply moved, leaving that record.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from gateway.errors import NotFoundError
from gateway.models import Identity, Verification
from gateway.protocols import LinkResult
from gateway.store.merge import merge_customers
from gateway.store.rules import Holder, plan_link


@dataclass(frozen=True, slots=True)
class Outcome:
    """What `link` did, for the store's caches."""

    result: LinkResult
    moved_from: int | None = None  # the record the identity was moved from (emptied)
    merged: int | None = None  # the record merged into the customer (deleted)


def link(
    conn: sqlite3.Connection,
    customer_id: int,
    identity: Identity,
    account_ref: str | None,
    *,
    ts: int,
) -> Outcome:
    """Link `identity` to the customer, merging another record that holds it
    (the decision is `rules.plan_link`, shared with PostgreSQL)."""
    cust = conn.execute(
        "SELECT id, account_ref FROM customers WHERE id=?", (customer_id,)
    ).fetchone()
    if cust is None:
        raise NotFoundError(f"no customer {customer_id}")
    row = conn.execute(
        "SELECT i.customer_id, i.verified, c.account_ref FROM identities i"
        " JOIN customers c ON c.id = i.customer_id WHERE i.kind=? AND i.value=?",
        (identity.kind.value, identity.value),
    ).fetchone()
    holder = None
    if row is not None:
        used = conn.execute(
            "SELECT 1 FROM messages WHERE customer_id=? LIMIT 1", (row["customer_id"],)
        ).fetchone()
        holder = Holder(int(row["customer_id"]), Verification(row["verified"]),
                        row["account_ref"], used is not None)  # fmt: skip
    plan = plan_link(customer_id, cust["account_ref"], identity.verified, account_ref, holder)
    if plan.result is LinkResult.OTHER_ACCOUNT:
        return Outcome(plan.result)
    if plan.merge is not None:
        reason = {"identity": identity.key, "proof": identity.verified.value}
        merge_customers(conn, customer_id, plan.merge, reason=reason, ts=ts)
    if plan.insert:
        conn.execute(
            "INSERT INTO identities (customer_id, kind, value, verified, created_at)"
            " VALUES (?,?,?,?,?)",
            (customer_id, identity.kind.value, identity.value, identity.verified.value, ts),
        )
    else:
        assert plan.verified is not None
        conn.execute(
            "UPDATE identities SET customer_id=?, verified=? WHERE kind=? AND value=?",
            (customer_id, plan.verified.value, identity.kind.value, identity.value),
        )
    if plan.account_ref:
        conn.execute(
            "UPDATE customers SET account_ref=? WHERE id=?", (plan.account_ref, customer_id)
        )
    return Outcome(plan.result, moved_from=plan.moved_from, merged=plan.merge)


__all__ = ["Outcome", "link"]
