"""`DemoBackend`: the business backend on its own SQLite file, for demos and tests.

The file is created and seeded with the data set documented in
agent/DEMO_DATA.md (its tables and rows: agent/demo_seed.py) the first time it
is opened; opening it again changes nothing (a `meta` row records the seeding).
Dates in the seed are relative to the day it was seeded, so a fresh demo always
has an order in transit.

sqlite3 is blocking, so every call runs in a worker thread
(`asyncio.to_thread`) on one connection guarded by a lock.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TypeVar

from agent.backend import (
    Account,
    BillingSummary,
    Charge,
    LookupKind,
    Order,
    OrderItem,
    PasswordResetSent,
    Subscription,
)
from agent.demo_seed import SCHEMA, seed
from gateway.errors import BackendError
from gateway.phone_numbers import to_e164

T = TypeVar("T")


def mask_email(address: str) -> str:
    """`jane@example.com` -> `j***@example.com`: enough to recognise, not to harvest."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def _normalize_phone(value: str) -> str:
    return to_e164(value) or value.strip()


def _d(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


class DemoBackend:
    """The `Backend` protocol on an SQLite file at `path` (created and seeded on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._closed = False

    # ------------------------------------------------------------ plumbing

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def work() -> T:
            with self._lock:
                conn = self._connection()
                try:
                    with conn:  # one transaction per call
                        return fn(conn)
                except sqlite3.Error as exc:
                    raise BackendError(f"demo backend: {exc}") from exc

        return await asyncio.to_thread(work)

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise BackendError("demo backend is closed")
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Calls arrive on varying worker threads, serialized by self._lock.
            conn = sqlite3.connect(self.path, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)
            with conn:
                conn.execute("BEGIN IMMEDIATE")  # two processes seeding at once: one wins
                seeded = conn.execute("SELECT value FROM meta WHERE key='seeded_on'").fetchone()
                if seeded is None:
                    seed(conn, date.today())
            self._conn = conn
        return self._conn

    async def close(self) -> None:
        def work() -> None:
            with self._lock:
                self._closed = True
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None

        await asyncio.to_thread(work)

    # ------------------------------------------------------------ lookups

    async def get_account(self, account_id: str) -> Account | None:
        def read(conn: sqlite3.Connection) -> Account | None:
            row = conn.execute("SELECT * FROM accounts WHERE id=?", (account_id,)).fetchone()
            return _account(row) if row else None

        return await self._run(read)

    async def list_accounts(self) -> list[Account]:
        """Every demo account (the demo page offers them as sign-in choices)."""

        def read(conn: sqlite3.Connection) -> list[Account]:
            return [_account(r) for r in conn.execute("SELECT * FROM accounts ORDER BY id")]

        return await self._run(read)

    async def find_account(self, kind: LookupKind, value: str) -> Account | None:
        if kind == "email":
            column, key = "email", value.strip().lower()
        elif kind == "phone":
            column, key = "phone", _normalize_phone(value)
        else:
            raise BackendError(f"cannot look accounts up by {kind!r}")

        def read(conn: sqlite3.Connection) -> Account | None:
            row = conn.execute(f"SELECT * FROM accounts WHERE {column}=?", (key,)).fetchone()
            return _account(row) if row else None

        return await self._run(read)

    async def get_order(self, order_id: str) -> Order | None:
        def read(conn: sqlite3.Connection) -> Order | None:
            row = conn.execute("SELECT * FROM orders WHERE id=?", (order_id,)).fetchone()
            return _order(row) if row else None

        return await self._run(read)

    async def list_orders(self, account_id: str, *, limit: int = 10) -> list[Order]:
        def read(conn: sqlite3.Connection) -> list[Order]:
            rows = conn.execute(
                "SELECT * FROM orders WHERE account_id=? ORDER BY placed_on DESC, id DESC LIMIT ?",
                (account_id, limit),
            ).fetchall()
            return [_order(r) for r in rows]

        return await self._run(read)

    async def get_subscription(self, account_id: str) -> Subscription | None:
        def read(conn: sqlite3.Connection) -> Subscription | None:
            row = conn.execute(
                "SELECT * FROM subscriptions WHERE account_id=?"
                " ORDER BY status='active' DESC, started_on DESC LIMIT 1",
                (account_id,),
            ).fetchone()
            return _subscription(row) if row else None

        return await self._run(read)

    async def billing_summary(self, account_id: str) -> BillingSummary:
        def read(conn: sqlite3.Connection) -> BillingSummary:
            acct = conn.execute("SELECT * FROM accounts WHERE id=?", (account_id,)).fetchone()
            if acct is None:
                raise BackendError(f"no account {account_id}")
            rows = conn.execute(
                "SELECT * FROM charges WHERE account_id=?"
                " ORDER BY created_on DESC, id DESC LIMIT 5",
                (account_id,),
            ).fetchall()
            renews = conn.execute(
                "SELECT MIN(renews_on) AS d FROM subscriptions"
                " WHERE account_id=? AND status='active'",
                (account_id,),
            ).fetchone()
            return BillingSummary(
                account_id=account_id,
                payment_method=acct["payment_method"],
                currency=acct["currency"],
                next_invoice_on=_d(renews["d"]),
                recent=tuple(_charge(r) for r in rows),
            )

        return await self._run(read)

    # ------------------------------------------------------------ actions

    async def send_password_reset(self, account_id: str) -> PasswordResetSent:
        def write(conn: sqlite3.Connection) -> PasswordResetSent:
            row = conn.execute("SELECT email FROM accounts WHERE id=?", (account_id,)).fetchone()
            if row is None:
                raise BackendError(f"no account {account_id}")
            now = datetime.now(UTC)
            # The demo "sends" by recording the email it would have sent.
            conn.execute(
                "INSERT INTO password_resets (account_id, sent_to, sent_at) VALUES (?, ?, ?)",
                (account_id, row["email"], now.isoformat()),
            )
            return PasswordResetSent(
                account_id=account_id, sent_to=mask_email(row["email"]), sent_at=now
            )

        return await self._run(write)

    async def cancel_subscription(self, account_id: str) -> Subscription:
        def write(conn: sqlite3.Connection) -> Subscription:
            row = conn.execute(
                "SELECT * FROM subscriptions WHERE account_id=? AND status='active'",
                (account_id,),
            ).fetchone()
            if row is None:
                raise BackendError(f"account {account_id} has no active subscription")
            today = date.today().isoformat()
            # Access continues to the end of the paid period, which is the renewal date.
            conn.execute(
                "UPDATE subscriptions SET status='cancelled', cancelled_on=?,"
                " access_until=renews_on, renews_on=NULL WHERE id=?",
                (today, row["id"]),
            )
            updated = conn.execute("SELECT * FROM subscriptions WHERE id=?", (row["id"],))
            return _subscription(updated.fetchone())

        return await self._run(write)

    async def refund_order(self, order_id: str, reason: str) -> Charge:
        def write(conn: sqlite3.Connection) -> Charge:
            order = conn.execute("SELECT * FROM orders WHERE id=?", (order_id,)).fetchone()
            if order is None:
                raise BackendError(f"no order {order_id}")
            refunded = conn.execute(
                "SELECT 1 FROM charges WHERE order_id=? AND kind='refund'", (order_id,)
            ).fetchone()
            if refunded is not None:
                raise BackendError(f"order {order_id} was already refunded")
            charge_id = f"RF-{order_id}"
            conn.execute(
                "INSERT INTO charges VALUES (?, ?, 'refund', ?, ?, ?, ?, ?)",
                (charge_id, order["account_id"], order["total_cents"], order["currency"],
                 f"Refund of order {order_id}: {reason}"[:200], date.today().isoformat(),
                 order_id),
            )  # fmt: skip
            row = conn.execute("SELECT * FROM charges WHERE id=?", (charge_id,)).fetchone()
            return _charge(row)

        return await self._run(write)

    # ------------------------------------------------------------ demo only

    async def password_resets_sent(self, account_id: str) -> int:
        """How many reset emails the demo has 'sent' to an account (demos, tests)."""

        def read(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "SELECT COUNT(*) AS n FROM password_resets WHERE account_id=?", (account_id,)
            ).fetchone()
            return int(row["n"])

        return await self._run(read)


# ---------------------------------------------------------------- rows


def _account(row: sqlite3.Row) -> Account:
    return Account(
        id=row["id"], name=row["name"], email=row["email"], phone=row["phone"], tier=row["tier"]
    )


def _order(row: sqlite3.Row) -> Order:
    items = tuple(OrderItem(**item) for item in json.loads(row["items"]))
    return Order(
        id=row["id"],
        account_id=row["account_id"],
        status=row["status"],
        items=items,
        total_cents=row["total_cents"],
        currency=row["currency"],
        placed_on=date.fromisoformat(row["placed_on"]),
        carrier=row["carrier"],
        tracking_number=row["tracking_number"],
        eta=_d(row["eta"]),
        delivered_on=_d(row["delivered_on"]),
        cancelled_on=_d(row["cancelled_on"]),
    )


def _subscription(row: sqlite3.Row) -> Subscription:
    return Subscription(
        id=row["id"],
        account_id=row["account_id"],
        plan=row["plan"],
        status=row["status"],
        price_cents=row["price_cents"],
        currency=row["currency"],
        interval=row["interval"],
        started_on=date.fromisoformat(row["started_on"]),
        renews_on=_d(row["renews_on"]),
        cancelled_on=_d(row["cancelled_on"]),
        access_until=_d(row["access_until"]),
    )


def _charge(row: sqlite3.Row) -> Charge:
    return Charge(
        id=row["id"],
        account_id=row["account_id"],
        kind=row["kind"],
        amount_cents=row["amount_cents"],
        currency=row["currency"],
        description=row["description"],
        created_on=date.fromisoformat(row["created_on"]),
        order_id=row["order_id"],
    )


__all__ = ["DemoBackend", "mask_email"]
