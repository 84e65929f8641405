"""The reports' cost section and help-centre gaps at scale, and how well the gaps'
grouping separates real customer wording.

    .venv/bin/python bench/cost_gaps.py --conversations 100000 [--postgres URL]

1. Cost: bench/reports.py's 100,000 generated conversations over 30 days, plus their
   usage rows (LLM tokens on every one, SMS segments on SMS, call time and speech on
   calls) and a rep's queue entry on every handed-over one, in a fresh SQLite file
   (or the empty PostgreSQL database given). Times what the summary adds for its
   cost section: the two range reads (`DeskStore.usage`) and `cost_section`, and the
   whole summary with it (p50 and max of --repeat runs; wall clock and CPU).
2. Gaps: the real utterances of 12 intents in bench/eval/utterances.jsonl, grouped
   as gateway/desk/gaps.py does at several thresholds: groups, singletons, and
   purity (the share of questions in a group whose most common intent is theirs);
   then the time to embed and group --questions questions (the report's bound).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.reports import fmt, open_postgres, open_sqlite, rows, timed  # noqa: E402
from gateway.desk.cost import cost_section, unit_prices  # noqa: E402
from gateway.desk.gaps import MAX_QUESTIONS, THRESHOLD, GapEmbedder, group  # noqa: E402
from gateway.desk.summary import summarize  # noqa: E402

RATES = {"llm_prompt_per_1k_tokens": 0.00015, "llm_completion_per_1k_tokens": 0.0006,
         "stt_per_minute": 0.006, "tts_per_minute": 0.015, "sms_segment": 0.0079,
         "call_minute": 0.0085, "rep_minute": 0.5}  # fmt: skip
INTENTS = ("GetBranchHours", "FindATM", "CheckPaymentStatus", "GetExchangeRate",
           "CheckAccountBalance", "ResetPassword", "CancelPlan", "DisputeCharge",
           "takeaway_query", "transport_ticket", "weather_query", "cooking_recipe")  # fmt: skip
USAGE = (
    "INSERT INTO usage (conversation_id, source, llm_prompt_tokens, llm_completion_tokens,"
    " stt_ms, tts_ms, sms_segments, call_s, created_at) VALUES (?,?,?,?,?,?,?,?,?)"
)
ENTRY = (
    "INSERT INTO queue_entries (conversation_id, queue, kind, priority, rep_id, enqueued_at,"
    " assigned_at, ended_at, outcome) VALUES (?,?,?,?,?,?,?,?,?)"
)
REP = (
    "INSERT INTO reps (id, username, display_name, password_hash, skills, created_at)"
    " VALUES (1, 'ann', 'Ann', 'x', '[\"general\"]', 0)"
)


def with_usage(data: dict[str, list[tuple[Any, ...]]], seed: int = 11) -> None:
    """Add usage rows and a rep's queue entries to bench/reports.py's rows."""
    rnd = random.Random(seed)
    usage, entries = [], []
    for cid, _, state, channel, _, queue, t0, _, closed_at in data["conversations"]:
        usage.append((cid, None, rnd.randrange(800, 6000), rnd.randrange(40, 400), 0, 0, 0, 0,
                      t0 + 20_000))  # fmt: skip
        if channel == "sms":
            usage.append((cid, f"sms:SM{cid:032x}", 0, 0, 0, 0, rnd.randint(1, 3), 0, t0))
        if channel == "phone":
            call_s = rnd.randrange(30, 600)
            usage.append((cid, None, 0, 0, call_s * 400, call_s * 350, 0, 0, t0 + call_s * 1000))
            usage.append((cid, f"call:CA{cid:032x}", 0, 0, 0, 0, 0, call_s, t0 + call_s * 1000))
        if queue is not None and state == "closed":
            entries.append((cid, queue, "text", 0, 1, t0 + 45_000, t0 + 60_000, closed_at,
                            "closed"))  # fmt: skip
    data["usage"], data["queue_entries"] = usage, entries


async def bench_cost(args: argparse.Namespace) -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    data = rows(args.conversations, int(start.timestamp() * 1000))
    with_usage(data)
    with tempfile.TemporaryDirectory() as tmp:
        if args.postgres:
            store, desk = await open_postgres(args.postgres, data)
            async with store.pool.acquire() as conn:
                await conn.execute(REP)
                await conn.executemany(_numbered(ENTRY), data["queue_entries"])
                await conn.executemany(_numbered(USAGE), data["usage"])
                await conn.execute("ANALYZE")
        else:
            store, desk = await _sqlite(Path(tmp) / "bench.sqlite3", data)
        kind = "PostgreSQL" if args.postgres else "SQLite"
        print(f"{args.conversations} conversations, {len(data['usage'])} usage rows,"
              f" {len(data['queue_entries'])} rep entries ({kind})")  # fmt: skip
        try:
            until = start + timedelta(days=30)
            facts = await desk.facts(start, until)
            low, high = min(f.id for f in facts), max(f.id for f in facts)

            async def cost() -> Any:
                usage = await desk.usage(low, high, unit_prices(RATES))
                return cost_section(facts, usage, RATES, "USD")

            times, cpu, result = await timed(cost, args.repeat)
            print(f"cost section, 30 days: wall {fmt(times)}; CPU {fmt(cpu)};"
                  f" total {result.total} USD")  # fmt: skip

            async def whole() -> Any:
                facts = await desk.facts(start, until)
                summary = summarize(facts, start, until, now=until,
                                    first_response_s={}, resolution_s={})  # fmt: skip
                usage = await desk.usage(
                    min(f.id for f in facts), max(f.id for f in facts), unit_prices(RATES)
                )
                return summary.model_copy(update={"cost": cost_section(facts, usage, RATES, "USD")})

            times, cpu, _ = await timed(whole, args.repeat)
            print(f"summary with cost, 30 days: wall {fmt(times)}; CPU {fmt(cpu)}")
        finally:
            await store.close()


def _numbered(sql: str) -> str:
    from gateway.store.desk_sql import numbered

    return numbered(sql)


async def _sqlite(path: Path, data: dict[str, list[tuple[Any, ...]]]) -> tuple[Any, Any]:
    import sqlite3

    from gateway.store.sqlite import SqliteStore
    from gateway.store.sqlite_desk import SqliteDeskStore

    store, _ = await open_sqlite(path, data)
    await store.close()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(REP)
        conn.executemany(ENTRY, data["queue_entries"])
        conn.executemany(USAGE, data["usage"])
    conn.execute("ANALYZE")
    conn.close()
    store = SqliteStore.open(path)
    return store, SqliteDeskStore(store)


async def bench_gaps(args: argparse.Namespace) -> None:
    lines = (ROOT / "bench" / "eval" / "utterances.jsonl").read_text(encoding="utf-8")
    rows_ = [json.loads(line) for line in lines.splitlines()]
    chosen = [r for r in rows_ if r["source_label"] in INTENTS]
    embedder = GapEmbedder()
    t = time.perf_counter()
    vectors = await embedder.embed([r["text"] for r in chosen])
    print(f"WordLlama loaded and {len(chosen)} utterances of {len(INTENTS)} intents embedded"
          f" in {time.perf_counter() - t:.2f} s")  # fmt: skip
    for threshold in (0.38, 0.42, 0.46, 0.50):
        groups = group(vectors, threshold)
        pure = sum(max(collections.Counter(chosen[i]["source_label"] for i in g).values())
                   for g in groups)  # fmt: skip
        mark = "  (the report's threshold)" if threshold == THRESHOLD else ""
        print(f"threshold {threshold:.2f}: {len(groups):3} groups,"
              f" {sum(len(g) == 1 for g in groups):3} singletons,"
              f" purity {pure / len(chosen):.3f}{mark}")  # fmt: skip
    many = [r["text"] for r in rows_] * (args.questions // len(rows_) + 1)
    many = many[: args.questions]
    t = time.perf_counter()
    vectors = await embedder.embed(many)
    embedded = time.perf_counter() - t
    t = time.perf_counter()
    groups = group(vectors)
    print(f"{len(many)} questions: embedded in {embedded:.2f} s, grouped in"
          f" {time.perf_counter() - t:.2f} s ({len(groups)} groups)")  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--questions", type=int, default=MAX_QUESTIONS)
    parser.add_argument("--postgres", help="an empty PostgreSQL database URL (else SQLite)")
    parser.add_argument("--only", choices=("cost", "gaps"))
    args = parser.parse_args()
    if args.only != "gaps":
        await bench_cost(args)
    if args.only != "cost":
        await bench_gaps(args)


if __name__ == "__main__":
    asyncio.run(main())
