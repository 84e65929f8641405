"""The demo backend's tables and the data set it is seeded with (documented in
agent/DEMO_DATA.md); agent/demo_backend.py opens the file and answers queries.

Dates in the data are day offsets from the seed day, so a fresh demo always has
an order in transit.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import date, timedelta
from typing import Any

SCHEMA = """
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


def seed(conn: sqlite3.Connection, today: date) -> None:
    """Create the demo data set with its dates relative to `today` (in the caller's
    transaction, which also records `seeded_on` so it happens once)."""

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


__all__ = ["SCHEMA", "seed"]
