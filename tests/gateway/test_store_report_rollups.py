"""The rollups of migration 0018 on both backends: `report_facts.handover_reason` (the
reason in the brief of each conversation's first handover), `report_facts.score`
after a rating is deleted or moved, and `report_rep_conversations` (the reps who took
each conversation) stay equal to what the source rows give, recomputed here in
Python, through inserts, updates and deletes; the migration's backfill rebuilds them
from rows stored before it."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

from gateway.store import migrate
from gateway.store.urls import PgUrl
from tests.gateway.test_store_message_hours import _run
from tests.support.stores import open_store

T0 = 1_800_000_000_000

SETUP = (
    "INSERT INTO reps (id, username, display_name, password_hash, skills, created_at)"
    f" VALUES (1, 'ann', 'Ann', 'x', '[]', {T0}), (2, 'bob', 'Bob', 'x', '[]', {T0})",
    "INSERT INTO customers (id, display_name, last_seq, created_at) VALUES"
    f" (1, 'c1', 0, {T0}), (2, 'c2', 0, {T0}), (3, 'c3', 0, {T0})",
    "INSERT INTO conversations (id, customer_id, state, channel, channels, queue, created_at,"
    f" updated_at) VALUES (1, 1, 'with_rep', 'sms', '[\"sms\"]', 'general', {T0}, {T0}),"
    f" (2, 2, 'with_rep', 'webchat', '[\"webchat\"]', 'general', {T0}, {T0}),"
    f" (3, 3, 'active', 'email', '[\"email\"]', NULL, {T0}, {T0})",
)


def _event(conv: int, data: str, at: int) -> str:
    return (
        "INSERT INTO events (conversation_id, customer_id, kind, data, created_at)"
        f" VALUES ({conv}, {conv}, 'handover', '{data}', {at})"
    )


def _entry(entry: int, conv: int, rep: int | None) -> str:
    return (
        "INSERT INTO queue_entries (id, conversation_id, queue, kind, priority, enqueued_at,"
        f" rep_id) VALUES ({entry}, {conv}, 'general', 'text', 0, {T0},"
        f" {'NULL' if rep is None else rep})"
    )


def _rating(conv: int, score: int) -> str:
    return (
        "INSERT INTO ratings (conversation_id, customer_id, channel, score, requested_at)"
        f" VALUES ({conv}, {conv}, 'sms', {score}, {T0})"
    )


def _reason(data: str) -> Any:
    try:
        brief = json.loads(data)
    except ValueError:
        return None
    return brief.get("reason") if isinstance(brief, dict) else None


async def _assert_exact(url: str) -> dict[str, Any]:
    """The rollups against the source rows; returns what they hold."""
    events, facts, ratings, entries, reps = await _run(
        url,
        "SELECT conversation_id, data, created_at, id FROM events WHERE kind = 'handover'",
        "SELECT conversation_id, handover_at, handover_reason, score FROM report_facts",
        "SELECT conversation_id, score FROM ratings",
        "SELECT conversation_id, rep_id FROM queue_entries WHERE rep_id IS NOT NULL",
        "SELECT conversation_id, rep_id, n FROM report_rep_conversations WHERE n <> 0",
    )
    first: dict[int, tuple[int, int, str]] = {}  # conversation -> (at, id, data) of the first
    at_of = {conv: at for conv, at, _, _ in facts}
    for conv, data, at, event_id in events:
        if at == at_of[conv] and (conv not in first or event_id < first[conv][1]):
            first[conv] = (at, event_id, data)
    expected = {conv: _reason(first[conv][2]) if conv in first else None for conv in at_of}
    assert {conv: reason for conv, _, reason, _ in facts} == {
        conv: None if r is None else str(r) for conv, r in expected.items()
    }
    scores = dict(ratings)
    assert {conv: score for conv, _, _, score in facts} == {c: scores.get(c) for c in at_of}
    assert sorted(reps) == sorted((c, r, n) for (c, r), n in Counter(entries).items())
    return {"facts": sorted(facts), "reps": sorted(reps)}


async def test_the_rollups_follow_every_write_and_the_backfill_rebuilds_them(
    store_url: str,
) -> None:
    store = await open_store(store_url)
    await store.close()
    await _run(store_url, *SETUP)
    await _run(
        store_url,
        _event(1, '{"reason": "customer asked for a person"}', T0 + 10),
        _event(1, '{"reason": "angry"}', T0 + 20),  # a later handover: not the first
        _event(2, "not json", T0 + 30),
        _entry(1, 1, 1), _entry(2, 1, 2), _entry(3, 1, 1), _entry(4, 2, None),
        _rating(1, 5), _rating(2, 2),
    )  # fmt: skip
    held = await _assert_exact(store_url)
    assert ("customer asked for a person" in str(held["facts"])) and (1, 1, 2) in held["reps"]
    for change in (
        'UPDATE events SET data = \'{"reason": "refund please"}\' WHERE conversation_id = 1'
        f" AND created_at = {T0 + 10}",
        "UPDATE events SET data = '{\"reason\": 42}' WHERE conversation_id = 2",
        _event(3, '{"reason": "backend error"}', T0 + 40),
        f"DELETE FROM events WHERE conversation_id = 1 AND created_at = {T0 + 10}",
        "UPDATE ratings SET score = 3 WHERE conversation_id = 1",
        _rating(3, 4),
        "DELETE FROM ratings WHERE conversation_id = 2",
        "UPDATE ratings SET conversation_id = 2 WHERE conversation_id = 3",
        "UPDATE queue_entries SET rep_id = 2 WHERE id = 4",
        "UPDATE queue_entries SET rep_id = 2 WHERE id = 3",
        "DELETE FROM queue_entries WHERE id = 1",
        "UPDATE queue_entries SET conversation_id = 3 WHERE id = 2",
        _entry(5, 3, 1),
    ):
        await _run(store_url, change)
        await _assert_exact(store_url)
    final = await _assert_exact(store_url)
    (negative,) = await _run(store_url, "SELECT COUNT(*) FROM report_rep_conversations WHERE n < 0")
    assert negative == [(0,)]

    # The migration fills the rollups from rows stored before it.
    url = store_url if store_url.startswith("sqlite") else PgUrl.parse(store_url).sqlalchemy
    await asyncio.to_thread(migrate.downgrade, url, "0017")
    await _run(store_url, "UPDATE report_facts SET score = NULL")  # as a deleted rating left it
    await asyncio.to_thread(migrate.upgrade, url)
    assert await _assert_exact(store_url) == final
