"""`report_message_hours` (migration 0017) on both backends: the triggers keep it equal
to the messages counted by conversation, hour since the epoch and direction, through
ingests, a customer merge (linking), and a delete or an update of a message's
conversation, time or direction; the migration's backfill rebuilds the same rows."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import asyncpg

from gateway.models import Identity, IdentityKind, Verification
from gateway.protocols import LinkResult
from gateway.store import migrate
from gateway.store.urls import PgUrl
from tests.gateway.test_store_linking import PHONE, say, web
from tests.support.stores import open_store

HOUR = 3_600_000
COUNTED = (
    "SELECT conversation_id, created_at / 3600000, direction, COUNT(*) FROM messages"
    " GROUP BY conversation_id, created_at / 3600000, direction"
)
ROLLED = "SELECT conversation_id, epoch_hour, direction, n FROM report_message_hours WHERE n <> 0"


async def _run(url: str, *sql: str) -> list[list[tuple[Any, ...]]]:
    """Each statement's rows, in one transaction, straight on the database."""
    if url.startswith("sqlite:///"):

        def work() -> list[list[tuple[Any, ...]]]:
            conn = sqlite3.connect(url.removeprefix("sqlite:///"))
            try:
                with conn:
                    return [conn.execute(s).fetchall() for s in sql]
            finally:
                conn.close()

        return await asyncio.to_thread(work)
    conn = await asyncpg.connect(PgUrl.parse(url).dsn)
    try:
        async with conn.transaction():
            return [[tuple(r) for r in await conn.fetch(s)] for s in sql]
    finally:
        await conn.close()


async def _assert_exact(url: str) -> list[tuple[Any, ...]]:
    counted, rolled = await _run(url, COUNTED, ROLLED)
    assert sorted(rolled) == sorted(counted)
    return sorted(counted)


async def test_the_rollup_counts_every_message_through_merges_deletes_and_moves(
    store_url: str,
) -> None:
    store = await open_store(store_url)
    texter = PHONE.model_copy(update={"verified": Verification.SENDER})
    owner = await say(store, texter, "first text")
    await say(store, texter, "second text")
    cid = await say(store, web(2), "chat one")
    await say(store, web(2), "chat two")
    other = await say(store, Identity(kind=IdentityKind.WEBCHAT, value="v-9"), "hello")
    before = await _assert_exact(store_url)
    assert sum(r[3] for r in before) == 5
    # A merge moves the texter's messages to the survivor's numbering, not their
    # conversations: the counts stay as they were.
    merged = await store.link_identity(cid, PHONE)
    assert merged.result is LinkResult.MERGED and owner != cid
    assert await _assert_exact(store_url) == before
    await store.close()

    ((conv, customer),) = (await _run(
        store_url, f"SELECT conversation_id, customer_id FROM messages WHERE customer_id = {other}"
    ))[0]  # fmt: skip
    (((conv2,),),) = await _run(
        store_url, f"SELECT MIN(conversation_id) FROM messages WHERE customer_id = {cid}"
    )
    base = 1_800_000 * HOUR  # 2175-05-... (a fixed hour, well clear of the others)

    def message(seq: int, at: int, direction: str = "outbound") -> str:
        author = "agent" if direction == "outbound" else "customer"
        return (
            "INSERT INTO messages (conversation_id, customer_id, seq, direction, author, channel,"
            f" text, handled, attempts, created_at) VALUES ({conv}, {customer}, {seq},"
            f" '{direction}', '{author}', 'webchat', 'm{seq}', true, 0, {at})"
        )

    await _run(store_url, message(100, base), message(101, base + HOUR - 1),
               message(102, base + HOUR), message(103, base + 5, "inbound"))  # fmt: skip
    rows = await _assert_exact(store_url)
    assert (conv, 1_800_000, "outbound", 2) in rows and (conv, 1_800_001, "outbound", 1) in rows
    for change in (
        f"UPDATE messages SET created_at = created_at + 2 * {HOUR} WHERE seq = 101"
        f" AND customer_id = {customer}",
        f"UPDATE messages SET direction = 'inbound' WHERE seq = 100 AND customer_id = {customer}",
        f"UPDATE messages SET conversation_id = {conv2} WHERE seq = 102"
        f" AND customer_id = {customer}",
        f"UPDATE messages SET text = 'edited' WHERE seq = 103 AND customer_id = {customer}",
        f"DELETE FROM messages WHERE seq = 103 AND customer_id = {customer}",
    ):
        await _run(store_url, change)
        await _assert_exact(store_url)
    (negative,) = await _run(store_url, "SELECT COUNT(*) FROM report_message_hours WHERE n < 0")
    assert negative == [(0,)]

    # The backfill rebuilds the same rows from the stored messages.
    final = await _assert_exact(store_url)
    url = store_url if store_url.startswith("sqlite") else PgUrl.parse(store_url).sqlalchemy
    await asyncio.to_thread(migrate.downgrade, url, "0017-1")
    await asyncio.to_thread(migrate.upgrade, url)
    counted, rolled = await _run(store_url, COUNTED, "SELECT conversation_id, epoch_hour,"
                                 " direction, n FROM report_message_hours")  # fmt: skip
    assert sorted(rolled) == sorted(counted) == final
