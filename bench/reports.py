"""Reports over a large store: the summary of `GET /api/v1/reports/summary` and the
desk's conversation search over 100,000 generated conversations.

    .venv/bin/python bench/reports.py --conversations 100000 [--postgres URL]

Generates the rows directly (customers, conversations on the four channels over 30
days, the agent's `conversation.resolved` or a `handover`, a wait in the queue and a
rep's replies, ratings on a fifth) in a fresh SQLite file migrated to the current
schema (or the PostgreSQL database URL given, which must be empty: it is migrated
and filled), with usage rows (LLM tokens on every conversation, SMS segments on SMS,
speech and call time on calls). Then times what `GET /api/v1/reports/summary`
answers (gateway/desk/reports_api.py `report`: the facts, the summary with SLA
targets, the cost section's usage read and its figures) over the whole 30 days,
one day and filtered, and searches (a word in 1% of the
conversations, one order number, a word with a channel filter) through the
store's full-text engine (p50 and max of --repeat runs). The
gateway's own code reads them (gateway/store/*_desk.py, gateway/desk/summary.py).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway.desk.org_store import QueueTargets
from gateway.desk.report_filters import ReportFilters
from gateway.desk.reports_api import report
from gateway.desk.sla import BusinessClock
from gateway.desk.store import DeskStore, SearchQuery
from gateway.desk.summary import SPEED
from gateway.desk.targets import SlaPolicy
from gateway.models import ChannelKind
from gateway.routing.policy import DAYS

CHANNELS = ("webchat", "sms", "email", "phone")
DAY_MS = 86_400_000


REPS = 20
RATES = {"llm_prompt_per_1k_tokens": 0.00015, "llm_completion_per_1k_tokens": 0.0006,
         "stt_per_minute": 0.006, "tts_per_minute": 0.015, "sms_segment": 0.0079,
         "call_minute": 0.0085, "rep_minute": 0.5}  # fmt: skip


def rows(n: int, start_ms: int, seed: int = 7) -> dict[str, list[tuple[Any, ...]]]:
    """The rows of `n` conversations (one customer each) over 30 days from start_ms.

    A handed-over conversation is written as the gateway writes one: stored `with_rep`
    and its queue entry open, its messages (a rep's reply, the customer's answer, the
    rep's next reply), then taken (`assigned`), ended and closed by updates, so the
    report triggers (0013) see the same sequence of writes."""
    rnd = random.Random(seed)
    out: dict[str, list[tuple[Any, ...]]] = {k: [] for k in
                                              ("reps", "customers", "conversations", "messages",
                                               "events", "ratings", "queue_entries",
                                               "taken", "ended", "closed")}  # fmt: skip
    out["reps"] = [(r, f"rep{r}", f"Rep {r}", "x", '["general"]', start_ms)
                   for r in range(1, REPS + 1)]  # fmt: skip
    # Conversations are numbered in the order they start (as the store numbers them).
    starts = sorted(start_ms + rnd.randrange(30 * DAY_MS) for _ in range(n))
    for cid in range(1, n + 1):
        t0 = starts[cid - 1]
        channel = CHANNELS[cid % 4]
        handed = rnd.random() < 0.35
        times = [t0 + 20_000, t0 + 40_000]  # the customer, the agent
        if handed:
            taken = t0 + 45_000 + rnd.randrange(5_000, 600_000)  # waited in the queue
            first = taken + rnd.randrange(10_000, 120_000)
            asked = first + rnd.randrange(20_000, 300_000)
            times += [first, asked, asked + rnd.randrange(5_000, 400_000)]
            closed_at: int | None = times[-1] + rnd.randrange(10_000, 600_000)
        else:
            closed_at = t0 + rnd.randrange(60_000, 3_600_000) if rnd.random() < 0.3 else None
        out["customers"].append((cid, f"Customer {cid}", 4, t0))
        out["conversations"].append((cid, cid, "with_rep" if handed else
                                     "closed" if closed_at else "bot", channel,
                                     json.dumps([channel]), "general" if handed else None, t0,
                                     t0, None if handed else closed_at))  # fmt: skip
        authors = ("customer", "agent", "rep", "customer", "rep")[: len(times)]
        for seq, (author, at) in enumerate(zip(authors, times, strict=True), start=1):
            direction = "inbound" if author == "customer" else "outbound"
            text = f"message {seq} about order {cid}"
            if seq == 1 and cid % 97 == 0:
                text += " where is my refund"  # about 1% of the conversations
            out["messages"].append((cid, cid, seq, direction, author, channel, text, at))
        if handed:
            rep = 1 + cid % REPS
            out["events"].append((cid, cid, "handover", "{}", t0 + 45_000))
            out["queue_entries"].append((cid, cid, "general", "text", 0, t0 + 45_000))
            out["taken"].append((rep, taken, cid))
            out["ended"].append((closed_at, "closed", cid))
            out["closed"].append(("closed", closed_at, cid))
        elif rnd.random() < 0.6:
            how = "confirmed" if rnd.random() < 0.5 else "assumed"
            out["events"].append((cid, cid, "conversation.resolved",
                                  json.dumps({"how": how}), t0 + 50_000))  # fmt: skip
        out["events"].append((cid, cid, "agent.turn", "{}", t0 + 20_000))
        if closed_at and rnd.random() < 0.5:
            out["ratings"].append((cid, cid, channel, rnd.randint(1, 5), closed_at, closed_at))
    out["usage"] = usage_rows(out["conversations"], rnd)
    return out


def usage_rows(conversations: list[tuple[Any, ...]], rnd: random.Random) -> list[tuple[Any, ...]]:
    """The conversations' usage, as the gateway meters it (gateway/usage.py)."""
    usage: list[tuple[Any, ...]] = []
    for cid, _, _, channel, _, _, t0, _, _ in conversations:
        usage.append((cid, None, rnd.randrange(800, 6000), rnd.randrange(40, 400), 0, 0, 0, 0,
                      t0 + 20_000))  # fmt: skip
        if channel == "sms":
            usage.append((cid, f"sms:SM{cid:032x}", 0, 0, 0, 0, rnd.randint(1, 3), 0, t0))
        if channel == "phone":
            call_s = rnd.randrange(30, 600)
            usage.append((cid, None, 0, 0, call_s * 400, call_s * 350, 0, 0, t0 + call_s * 1000))
            usage.append((cid, f"call:CA{cid:032x}", 0, 0, 0, 0, 0, call_s, t0 + call_s * 1000))
    return usage


INSERTS = {
    "reps": "INSERT INTO reps (id, username, display_name, password_hash, skills, created_at)"
    " VALUES (?,?,?,?,?,?)",
    "customers": "INSERT INTO customers (id, display_name, last_seq, created_at) VALUES (?,?,?,?)",
    "conversations": "INSERT INTO conversations (id, customer_id, state, channel, channels,"
    " queue, created_at, updated_at, closed_at) VALUES (?,?,?,?,?,?,?,?,?)",
    "queue_entries": "INSERT INTO queue_entries (id, conversation_id, queue, kind, priority,"
    " enqueued_at) VALUES (?,?,?,?,?,?)",
    "messages": "INSERT INTO messages (conversation_id, customer_id, seq, direction, author,"
    " channel, text, created_at) VALUES (?,?,?,?,?,?,?,?)",
    "events": "INSERT INTO events (conversation_id, customer_id, kind, data, created_at)"
    " VALUES (?,?,?,?,?)",
    "ratings": "INSERT INTO ratings (conversation_id, customer_id, channel, score,"
    " requested_at, rated_at) VALUES (?,?,?,?,?,?)",
    "taken": "UPDATE queue_entries SET rep_id = ?, assigned_at = ? WHERE id = ?",
    "ended": "UPDATE queue_entries SET ended_at = ?, outcome = ? WHERE id = ?",
    "closed": "UPDATE conversations SET state = ?, closed_at = ? WHERE id = ?",
}
USAGE = (
    "INSERT INTO usage (conversation_id, source, llm_prompt_tokens, llm_completion_tokens,"
    " stt_ms, tts_ms, sms_segments, call_s, created_at) VALUES (?,?,?,?,?,?,?,?,?)"
)


async def open_sqlite(path: Path, data: dict[str, list[tuple[Any, ...]]]) -> tuple[Any, DeskStore]:
    import sqlite3

    from gateway.store.sqlite import SqliteStore
    from gateway.store.sqlite_desk import SqliteDeskStore

    store = SqliteStore.open(path)  # migrated to the current schema
    await store.close()
    conn = sqlite3.connect(path)
    with conn:
        for table, sql in INSERTS.items():
            conn.executemany(sql, data[table])
        conn.executemany(USAGE, data["usage"])
    conn.execute("ANALYZE")
    conn.close()
    store = SqliteStore.open(path)
    return store, SqliteDeskStore(store)


async def open_postgres(url: str, data: dict[str, list[tuple[Any, ...]]]) -> tuple[Any, DeskStore]:
    from gateway.store.desk_sql import numbered
    from gateway.store.pg_desk import PostgresDeskStore
    from gateway.store.postgres import PostgresStore

    store = await PostgresStore.open(url)
    async with store.pool.acquire() as conn:
        for table, sql in INSERTS.items():
            await conn.executemany(numbered(sql), data[table])
        await conn.executemany(numbered(USAGE), data["usage"])
        await conn.execute("ANALYZE")
    return store, PostgresDeskStore(store)


async def timed(
    fn: Callable[[], Awaitable[Any]], repeat: int
) -> tuple[list[float], list[float], Any]:
    """Wall-clock and CPU seconds (this process, all threads) of each run."""
    times, cpu, result = [], [], None
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        result = await fn()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return times, cpu, result


def fmt(times: list[float]) -> str:
    return f"p50 {statistics.median(times) * 1000:7.1f} ms  max {max(times) * 1000:7.1f} ms"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--postgres", help="an empty PostgreSQL database URL (else SQLite)")
    args = parser.parse_args()
    start = datetime(2026, 11, 1, tzinfo=UTC)
    t = time.perf_counter()
    data = rows(args.conversations, int(start.timestamp() * 1000))
    with tempfile.TemporaryDirectory() as tmp:
        if args.postgres:
            store, desk = await open_postgres(args.postgres, data)
        else:
            store, desk = await open_sqlite(Path(tmp) / "bench.sqlite3", data)
        kind = "PostgreSQL" if args.postgres else "SQLite"
        print(f"load average {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs")
        print(f"{args.conversations} conversations, {len(data['messages'])} messages,"
              f" {len(data['events'])} events, {len(data['usage'])} usage rows generated and"
              f" stored in {time.perf_counter() - t:.1f} s ({kind})")  # fmt: skip
        try:
            # SLA counted in business hours (weekdays 09:00-17:00, Paris): desk/sla.py.
            office = BusinessClock.of(dict.fromkeys(DAYS[:5], "09:00-17:00"), "Europe/Paris")
            cases: list[tuple[str, int, dict[str, Any], BusinessClock | None]] = [
                ("30 days", 30, {}, None), ("30 days, business hours", 30, {}, office),
                ("1 day", 1, {}, None),
                ("30 days, sms", 30, {"channels": {"sms"}}, None),
                ("30 days, 1 rep", 30, {"rep_ids": {1}}, None),
            ]  # fmt: skip
            for label, days, only, clock in cases:
                until = start + timedelta(days=days)
                queues = {"general": QueueTargets(queue="general", first_response_s=300.0,
                                                  next_response_s=300.0,
                                                  resolution_s=3600.0)}  # fmt: skip
                policy = SlaPolicy(clock or BusinessClock({}, ZoneInfo("UTC")), queues, 0.25)

                async def summary(
                    until: datetime = until, only: dict[str, Any] = only,
                    policy: SlaPolicy = policy,
                ) -> Any:  # fmt: skip
                    return await report(desk, start, until, ReportFilters(**only), policy=policy,
                                        rates=RATES, currency="USD", tz=UTC, now=until)  # fmt: skip

                times, cpu, result = await timed(summary, args.repeat)
                # The figures' fingerprint: equal before and after a change that must
                # not change them.
                digest = hashlib.sha256(result.model_dump_json().encode()).hexdigest()[:12]
                print(f"API summary, {label:24} ({result.conversations:6} conversations):"
                      f" wall {fmt(times)}; CPU {fmt(cpu)}; figures {digest}")  # fmt: skip
                if label == "30 days":
                    speed = {name: (getattr(result, name).p50, getattr(result, name).count)
                             for name in SPEED}  # fmt: skip
                    print(f"  figures (p50 s, count): {speed}; SLA {result.sla};"
                          f" cost total {result.cost.total}, costliest"
                          f" {result.cost.costliest[0].id}")  # fmt: skip
            for label, query in (
                ("'refund'", SearchQuery(text="refund")),
                ("'order 4242'", SearchQuery(text="order 4242")),
                ("'refund' on sms", SearchQuery(text="refund", channel=ChannelKind.SMS)),
            ):

                async def find(query: SearchQuery = query) -> Any:
                    return await desk.search(query)

                times, cpu, hits = await timed(find, args.repeat)
                print(f"search {label:16} ({len(hits):2} shown): wall {fmt(times)};"
                      f" CPU {fmt(cpu)}")  # fmt: skip
        finally:
            await store.close()


if __name__ == "__main__":
    asyncio.run(main())
