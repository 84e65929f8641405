"""The reports' cost section and help-centre gaps at scale, and how well the gaps'
grouping separates real customer wording.

    .venv/bin/python bench/cost_gaps.py --conversations 100000 [--postgres URL]

1. Cost: bench/reports.py's 100,000 generated conversations over 30 days, with their
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


async def bench_cost(args: argparse.Namespace) -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    data = rows(args.conversations, int(start.timestamp() * 1000))  # usage rows included
    with tempfile.TemporaryDirectory() as tmp:
        if args.postgres:
            store, desk = await open_postgres(args.postgres, data)
        else:
            store, desk = await open_sqlite(Path(tmp) / "bench.sqlite3", data)
        kind = "PostgreSQL" if args.postgres else "SQLite"
        print(f"{args.conversations} conversations, {len(data['usage'])} usage rows,"
              f" {len(data['taken'])} rep entries ({kind})")  # fmt: skip
        try:
            until = start + timedelta(days=30)
            facts = await desk.facts(start, until)
            low, high = int(facts.id.min()), int(facts.id.max())

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
                    int(facts.id.min()), int(facts.id.max()), unit_prices(RATES)
                )
                return summary.model_copy(update={"cost": cost_section(facts, usage, RATES, "USD")})

            times, cpu, _ = await timed(whole, args.repeat)
            print(f"summary with cost, 30 days: wall {fmt(times)}; CPU {fmt(cpu)}")
        finally:
            await store.close()


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
