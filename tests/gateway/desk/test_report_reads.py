"""`DeskStore.report_reads` (one snapshot for the summary's reads) on both stores: it
reads what the separate reads give, on PostgreSQL also when the pool has no spare
connection (every read then runs on the snapshot's own connection), and its figures
agree with the source rows (the handover reasons, CSAT by rep, next-response waits)."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from bench.reports import RATES, open_postgres, open_sqlite, rows
from gateway.desk.cost import unit_prices
from gateway.desk.extras import ReportReads
from gateway.desk.store import DeskStore
from gateway.store.pg_desk import PostgresDeskStore
from gateway.store.postgres import PostgresStore
from tests.gateway.test_store_message_hours import _run

START = datetime(2026, 11, 1, tzinfo=UTC)
UNTIL = START + timedelta(days=30)


async def _reads(desk: DeskStore) -> ReportReads:
    return await desk.report_reads(START, UNTIL, target_queues={"general"},
                                   prices=unit_prices(RATES))  # fmt: skip


def _same_facts(a: Any, b: Any) -> None:
    for field in dataclasses.fields(a):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if x.dtype == object:
            assert x.tolist() == y.tolist(), field.name
        else:
            np.testing.assert_array_equal(np.sort(x), np.sort(y), err_msg=field.name)


async def test_one_snapshot_reads_what_the_separate_reads_do(
    store_url: str, tmp_path: Path
) -> None:
    data = rows(400, int(START.timestamp() * 1000))
    if store_url.startswith("sqlite"):
        store, desk = await open_sqlite(tmp_path / "reads.sqlite3", data)
        url = f"sqlite:///{tmp_path / 'reads.sqlite3'}"
    else:
        store, desk = await open_postgres(store_url, data)
        url = store_url
    try:
        got = await _reads(desk)
        _same_facts(got.facts, await desk.facts(START, UNTIL))
        assert len(got.facts) == 400 and got.usage.cost_of
        # Every conversation is in the period, so the id-range read covers the same ones.
        first, last = int(got.facts.id.min()), int(got.facts.id.max())
        assert last - first == 399
        assert got.usage == await desk.usage(first, last, unit_prices(RATES))

        handed = int((~np.isnan(got.facts.handover_at)).sum())
        assert handed > 0 and sum(n for _, n in got.extras.reasons) == handed
        (pairs, responses) = await _run(
            url,
            "SELECT DISTINCT w.rep_id, r.conversation_id, r.score FROM ratings r"
            " JOIN queue_entries w ON w.conversation_id = r.conversation_id"
            " WHERE w.rep_id IS NOT NULL AND r.score BETWEEN 1 AND 5",
            "SELECT COUNT(*) FROM report_responses",
        )
        by_rep: Counter[int] = Counter()
        total: Counter[int] = Counter()
        for rep, _, score in pairs:
            by_rep[rep] += 1
            total[rep] += score
        assert {r[0]: (r[2], r[3]) for r in got.extras.csat_reps} == {
            rep: (n, total[rep]) for rep, n in by_rep.items()
        }
        assert len(got.extras.waits) >= responses[0][0] > 0

        if isinstance(store, PostgresStore):
            # One pooled connection: no spare for the reads (each waits SPARE_WAIT_S),
            # so every read runs on the exporting one, in turn.
            lone = await PostgresStore.open(store_url, pool_max=1)
            try:
                alone = await _reads(PostgresDeskStore(lone))
            finally:
                await lone.close()
            _same_facts(alone.facts, got.facts)
            assert alone.usage == got.usage
            assert sorted(alone.extras.messages) == sorted(got.extras.messages)
            assert sorted(alone.extras.waits) == sorted(got.extras.waits)
    finally:
        await store.close()
