"""The demo backend: seeding, idempotence, lookups and actions on its SQLite file."""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta
from pathlib import Path

import pytest

from agent.backend import Backend
from agent.demo_backend import DemoBackend, mask_email
from gateway.errors import BackendError


def test_it_implements_the_protocol(tmp_path: Path) -> None:
    backend: Backend = DemoBackend(tmp_path / "b.sqlite3")
    assert backend is not None


async def test_seeded_data_set(backend: DemoBackend) -> None:
    jane = await backend.get_account("C-1001")
    assert jane is not None
    assert (jane.name, jane.email, jane.phone, jane.tier) == (
        "Jane Doe", "jane@example.com", "+15551234567", "gold",
    )  # fmt: skip
    shipped = await backend.get_order("1001")
    assert shipped is not None and shipped.status == "shipped" and shipped.carrier == "UPS"
    assert shipped.eta == date.today() + timedelta(days=2)
    assert shipped.total == "$129.99"
    assert [o.id for o in await backend.list_orders("C-1001")] == ["1002", "1001"]
    assert [o.id for o in await backend.list_orders("C-1002")] == ["2002", "2001"]
    ana = await backend.get_subscription("C-1003")
    assert ana is not None and ana.status == "active" and ana.price == "£99.00"
    assert await backend.get_order("nope") is None
    assert await backend.get_account("C-0000") is None
    for account in ("C-1001", "C-1002", "C-1003", "C-1004", "C-1005"):
        assert await backend.get_account(account) is not None


async def test_seeding_is_idempotent_and_changes_persist(tmp_path: Path) -> None:
    path = tmp_path / "demo.sqlite3"
    first = DemoBackend(path)
    await first.cancel_subscription("C-1001")
    await first.close()
    again = DemoBackend(path)
    sub = await again.get_subscription("C-1001")
    assert sub is not None and sub.status == "cancelled"
    await again.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM accounts").fetchone() == (5,)
        assert conn.execute("SELECT COUNT(*) FROM orders").fetchone() == (7,)


async def test_find_account_by_phone_or_email(backend: DemoBackend) -> None:
    by_phone = await backend.find_account("phone", "+1 (555) 123-4567")
    by_email = await backend.find_account("email", " Jane@Example.com ")
    assert by_phone is not None and by_email is not None
    assert by_phone.id == by_email.id == "C-1001"
    assert await backend.find_account("phone", "+10000000000") is None


async def test_billing_summary(backend: DemoBackend) -> None:
    bob = await backend.billing_summary("C-1002")
    assert bob.payment_method == "Mastercard ending 5454"
    assert bob.next_invoice_on is None  # no subscription
    kinds = [(c.kind, c.amount_cents, c.order_id) for c in bob.recent]
    assert ("refund", -2400, "2002") in kinds
    assert bob.recent[0].created_on >= bob.recent[-1].created_on  # newest first
    jane = await backend.billing_summary("C-1001")
    assert jane.next_invoice_on == date.today() + timedelta(days=12)
    with pytest.raises(BackendError):
        await backend.billing_summary("C-0000")


async def test_actions(backend: DemoBackend) -> None:
    sent = await backend.send_password_reset("C-1002")
    assert sent.sent_to == "b***@example.com"
    assert await backend.password_resets_sent("C-1002") == 1
    cancelled = await backend.cancel_subscription("C-1005")
    assert cancelled.status == "cancelled" and cancelled.renews_on is None
    assert cancelled.access_until == date.today() + timedelta(days=15)
    with pytest.raises(BackendError):
        await backend.cancel_subscription("C-1005")  # nothing active any more
    with pytest.raises(BackendError):
        await backend.send_password_reset("C-0000")


async def test_closed_backend_raises(tmp_path: Path) -> None:
    backend = DemoBackend(tmp_path / "b.sqlite3")
    await backend.close()
    with pytest.raises(BackendError):
        await backend.get_order("1001")


def test_mask_email() -> None:
    assert mask_email("jane@example.com") == "j***@example.com"
    assert mask_email("nonsense") == "***"


DEMO_DOC = (Path(__file__).resolve().parents[2] / "agent" / "DEMO_DATA.md").read_text()


async def test_lists_the_documented_demo_accounts(tmp_path: Path) -> None:
    backend = DemoBackend(tmp_path / "demo.sqlite3")
    try:
        accounts = await backend.list_accounts()
    finally:
        await backend.close()
    ids = [a.id for a in accounts]
    assert "C-1001" in ids and ids == sorted(ids)
    assert all(a.id in DEMO_DOC for a in accounts)  # every seeded account is documented
