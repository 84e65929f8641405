"""`Store.link_identity` for SQLite: run on the writer thread, inside its transaction.

Why there is no merge. Two customer records that both have messages cannot be
folded into one in this schema without rewriting history: every message has a
per-customer, gap-free `seq` that web chat clients resume from (UNIQUE
(customer_id, seq)), so moving one customer's messages under another means
renumbering them, and every open browser of either customer would resume from
the wrong place. So an identity held by another customer *with any message* is
refused (`OTHER_CUSTOMER`), and nothing changes; a rep can still see both
records. An identity held by a record with no messages at all (an empty
session) is simply moved: nothing is lost and nothing renumbered.
"""

from __future__ import annotations

import sqlite3

from gateway.errors import NotFoundError
from gateway.models import Identity, Verification
from gateway.protocols import LinkResult
from gateway.store.rows import VERIFICATION_RANK


def link(
    conn: sqlite3.Connection,
    customer_id: int,
    identity: Identity,
    account_ref: str | None,
    *,
    ts: int,
) -> tuple[LinkResult, int | None]:
    """Link `identity` to the customer. Returns the result and, when the
    identity was moved from an empty record, that record's id."""
    cust = conn.execute(
        "SELECT id, account_ref FROM customers WHERE id=?", (customer_id,)
    ).fetchone()
    if cust is None:
        raise NotFoundError(f"no customer {customer_id}")
    own_account = cust["account_ref"]
    if account_ref and own_account and own_account != account_ref:
        return LinkResult.OTHER_ACCOUNT, None
    row = conn.execute(
        "SELECT i.customer_id, i.verified, c.account_ref FROM identities i"
        " JOIN customers c ON c.id = i.customer_id WHERE i.kind=? AND i.value=?",
        (identity.kind.value, identity.value),
    ).fetchone()
    moved_from: int | None = None
    if row is None:
        result = LinkResult.LINKED
    elif row["customer_id"] == customer_id:
        result = LinkResult.ALREADY
    else:
        holder = row["customer_id"]
        used = conn.execute("SELECT 1 FROM messages WHERE customer_id=? LIMIT 1", (holder,))
        if used.fetchone() is not None:
            return LinkResult.OTHER_CUSTOMER, None
        theirs = row["account_ref"]
        if theirs and theirs != (account_ref or own_account or theirs):
            return LinkResult.OTHER_ACCOUNT, None
        result, moved_from = LinkResult.LINKED, holder
    if row is None:
        conn.execute(
            "INSERT INTO identities (customer_id, kind, value, verified, created_at)"
            " VALUES (?,?,?,?,?)",
            (customer_id, identity.kind.value, identity.value, identity.verified.value, ts),
        )
    else:
        known = Verification(row["verified"])
        verified = max(known, identity.verified, key=VERIFICATION_RANK.__getitem__)
        conn.execute(
            "UPDATE identities SET customer_id=?, verified=? WHERE kind=? AND value=?",
            (customer_id, verified.value, identity.kind.value, identity.value),
        )
    if account_ref and not own_account:
        conn.execute("UPDATE customers SET account_ref=? WHERE id=?", (account_ref, customer_id))
    return result, moved_from


__all__ = ["link"]
