"""`DemoBackend`: the business backend on its own SQLite file, for demos and tests.

The file is created and seeded with the data set documented in
agent/DEMO_DATA.md the first time it is opened; opening it again changes
nothing (a `meta` row records the seeding). Dates in the seed are relative to
the day it was seeded, so a fresh demo always has an order in transit.

sqlite3 is blocking, so every call runs in a worker thread
(`asyncio.to_thread`) on one connection guarded by a lock.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

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
from gateway.errors import BackendError
from gateway.phone_numbers import to_e164

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE,
    phone TEXT NOT NULL UNIQUE, tier TEXT NOT NULL, payment_method TEXT NOT NULL,
    currency TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id),
    status TEXT NOT NULL, items TEXT NOT NULL, total_cents INTEGER NOT NULL,
    currency TEXT NOT NULL, placed_on TEXT NOT NULL, carrier TEXT, tracking_number TEXT,
    eta TEXT, delivered_on TEXT, cancelled_on TEXT);
CREATE TABLE IF NOT EXISTS subscriptions (
    id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id),
    plan TEXT NOT NULL, status TEXT NOT NULL, price_cents INTEGER NOT NULL,
    currency TEXT NOT NULL, interval TEXT NOT NULL, started_on TEXT NOT NULL,
    renews_on TEXT, cancelled_on TEXT, access_until TEXT);
CREATE TABLE IF NOT EXISTS charges (
    id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id),
    kind TEXT NOT NULL, amount_cents INTEGER NOT NULL, currency TEXT NOT NULL,
    description TEXT NOT NULL, created_on TEXT NOT NULL, order_id TEXT);
CREATE TABLE IF NOT EXISTS password_resets (
    id INTEGER PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id),
    sent_to TEXT NOT NULL, sent_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS orders_by_account ON orders(account_id, placed_on);
CREATE INDEX IF NOT EXISTS charges_by_account ON charges(account_id, created_on);
"""

# (id, name, email, phone, tier, payment method, currency)
_ACCOUNTS = [
    ("C-1001", "Jane Doe", "jane@example.com", "+15551234567", "gold", "Visa ending 4242", "USD"),
    ("C-1002", "Bob Smith", "bob@example.com", "+15559876543", "standard",
     "Mastercard ending 5454", "USD"),
    ("C-1003", "Ana Lima", "ana.lima@example.com", "+447700900123", "silver",
     "Visa ending 1881", "GBP"),
    ("C-1004", "Wei Chen", "wei.chen@example.com", "+61412345678", "standard",
     "PayPal (wei.c***@example.com)", "USD"),
    ("C-1005", "Priya Patel", "priya@example.com", "+15550001111", "gold",
     "Amex ending 0005", "USD"),
]  # fmt: skip

# (id, account, status, [(sku, name, qty, unit cents)], placed, carrier, tracking,
#  eta, delivered, cancelled) with dates as day offsets from the seed day.
_ORDERS: list[tuple[Any, ...]] = [
    ("1001", "C-1001", "shipped", [("HP-200", "Wireless headphones", 1, 12999)], -3,
     "UPS", "1Z999AA10123456784", 2, None, None),
    ("1002", "C-1001", "processing", [("CB-USB-C", "USB-C charging cable", 2, 1499)], -1,
     None, None, 6, None, None),
    ("2001", "C-1002", "delivered", [("CG-10", "Burr coffee grinder", 1, 8950)], -10,
     "FedEx", "771234567890", -4, -4, None),
    ("2002", "C-1002", "cancelled", [("EC-4", "Espresso cups, set of 4", 1, 2400)], -6,
     None, None, None, None, -5),
    ("3001", "C-1003", "delivered", [("LS-1", "Aluminium laptop stand", 1, 4500)], -30,
     "Royal Mail", "RM123456785GB", -25, -25, None),
    ("4001", "C-1004", "returned", [("SW-3", "Smart watch", 1, 19900)], -20,
     "USPS", "9400111899223100001234", -15, -15, None),
    ("4002", "C-1004", "shipped", [("BK-7", "Hiking backpack", 1, 7450)], -4,
     "DHL", "JD014600003828374201", 4, None, None),
]  # fmt: skip

# (id, account, plan, status, cents, interval, started, renews, cancelled, access until)
_SUBSCRIPTIONS: list[tuple[Any, ...]] = [
    ("SUB-1001", "C-1001", "Premium monthly", "active", 999, "month", -200, 12, None, None),
    ("SUB-1003", "C-1003", "Pro annual", "active", 9900, "year", -100, 265, None, None),
    ("SUB-1004", "C-1004", "Premium monthly", "cancelled", 999, "month", -300, None, -40, -30),
    ("SUB-1005", "C-1005", "Family plan", "active", 1999, "month", -75, 15, None, None),
]

# (id, account, kind, cents, description, day offset, order)
_CHARGES: list[tuple[Any, ...]] = [
    ("CH-1001-1", "C-1001", "charge", 999, "Premium monthly", -18, None),
    ("CH-1001-2", "C-1001", "charge", 12999, "Order 1001", -3, "1001"),
    ("CH-1001-3", "C-1001", "charge", 2998, "Order 1002", -1, "1002"),
    ("CH-1002-1", "C-1002", "charge", 8950, "Order 2001", -10, "2001"),
    ("CH-1002-2", "C-1002", "charge", 2400, "Order 2002", -6, "2002"),
    ("CH-1002-3", "C-1002", "refund", -2400, "Refund for cancelled order 2002", -5, "2002"),
    ("CH-1003-1", "C-1003", "charge", 9900, "Pro annual", -100, None),
    ("CH-1003-2", "C-1003", "charge", 4500, "Order 3001", -30, "3001"),
    ("CH-1004-1", "C-1004", "charge", 19900, "Order 4001", -20, "4001"),
    ("CH-1004-2", "C-1004", "charge", 7450, "Order 4002", -4, "4002"),
    ("CH-1005-1", "C-1005", "charge", 1999, "Family plan", -45, None),
    ("CH-1005-2", "C-1005", "charge", 1999, "Family plan", -15, None),
]


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
            conn.executescript(_SCHEMA)
            with conn:
                conn.execute("BEGIN IMMEDIATE")  # two processes seeding at once: one wins
                seeded = conn.execute("SELECT value FROM meta WHERE key='seeded_on'").fetchone()
                if seeded is None:
                    _seed(conn, date.today())
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


def _seed(conn: sqlite3.Connection, today: date) -> None:
    def day(offset: int | None) -> str | None:
        return None if offset is None else (today + timedelta(days=offset)).isoformat()

    currency = {a[0]: a[6] for a in _ACCOUNTS}
    conn.executemany("INSERT INTO accounts VALUES (?, ?, ?, ?, ?, ?, ?)", _ACCOUNTS)
    for oid, acct, status, items, placed, carrier, tracking, eta, delivered, cancelled in _ORDERS:
        lines = [
            {"sku": s, "name": n, "quantity": q, "unit_price_cents": p} for s, n, q, p in items
        ]
        total = sum(q * p for _, _, q, p in items)
        conn.execute(
            "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (oid, acct, status, json.dumps(lines), total, currency[acct], day(placed), carrier,
             tracking, day(eta), day(delivered), day(cancelled)),
        )  # fmt: skip
    for sid, acct, plan, status, cents, interval, started, renews, ended, until in _SUBSCRIPTIONS:
        conn.execute(
            "INSERT INTO subscriptions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (sid, acct, plan, status, cents, currency[acct], interval, day(started), day(renews),
             day(ended), day(until)),
        )  # fmt: skip
    for cid, acct, kind, cents, description, created, order in _CHARGES:
        conn.execute(
            "INSERT INTO charges VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (cid, acct, kind, cents, currency[acct], description, day(created), order),
        )
    conn.execute("INSERT INTO meta VALUES ('seeded_on', ?)", (today.isoformat(),))


__all__ = ["DemoBackend", "mask_email"]
