"""Scale-out: chat load on one node and on two nodes, and a stored-conversation sweep.

    .venv/bin/python bench/scale.py --clients 100 --seconds 15

1. Chat load (the clients of bench/chat_load.py: real websockets, varied texts,
   each waits for the agent's answer before sending again) against one gateway
   node, then against two nodes (the same total clients, split between them),
   both on PostgreSQL and Redis on this machine. Prints messages/s and p50/p99
   reply latency, the CPU time the gateway nodes, PostgreSQL and Redis spent per
   reply (steadier than msg/s on a machine whose speed varies), then checks in
   the database that every message a client sent was stored and answered ("lost"
   must be 0).
2. Sweep: a database seeded (bulk, server-side) with 10k, then 100k stored
   conversations (4 messages each); at each size the store's lookup of a customer
   by identity, the history read of a chat (the last 20 messages) and the ingest
   of a new message are timed for random seeded customers. Flat figures across
   sizes mean the indexes do their work.

Needs PostgreSQL (GATEWAY_BENCH_PG_URL, default the local server) and Redis
(GATEWAY_BENCH_REDIS_URL); creates and drops its own databases.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from chat_load import free_port, run_clients, summarize, wait_up  # noqa: E402

PG = os.environ.get("GATEWAY_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("GATEWAY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def db_url(name: str) -> str:
    parts = urlsplit(PG)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))


async def admin(sql: str) -> None:
    conn = await asyncpg.connect(PG)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def new_db() -> str:
    name = f"gwpg_bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(admin(f"CREATE DATABASE {name}"))
    return name


def drop_db(name: str) -> None:
    asyncio.run(admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


# ------------------------------------------------------------- chat load


def start_node(port: int, data: Path, db: str, prefix: str, name: str) -> subprocess.Popen[bytes]:
    data.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "GATEWAY_PORT": str(port),
        "GATEWAY_DATA_DIR": str(data),
        "GATEWAY_LOG_LEVEL": "WARNING",
        "GATEWAY_DATABASE_URL": db_url(db),
        "GATEWAY_REDIS_URL": REDIS,
        "GATEWAY_REDIS_PREFIX": prefix,
        "GATEWAY_NODE_ID": name,
        "GATEWAY_SECRET_KEY": "bench-secret-0123456789abcdef",
        "GATEWAY_WEBCHAT_HISTORY_LIMIT": "1",
        # Each bench client stands for many customers' traffic on one socket.
        "GATEWAY_WEBCHAT_FRAMES_PER_MINUTE": "0",
    }
    return subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve"], env=env, cwd=ROOT)


def cpu_by_process(pids: set[int], names: set[str]) -> dict[int, float]:
    """CPU seconds used so far by the processes `pids` and those whose command is one
    of `names` (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        if int(entry.name) in pids or comm in names:
            fields = stat.rsplit(")", 1)[1].split()
            found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    return found


def cpu_spent(before: dict[int, float], after: dict[int, float], pids: set[int]) -> float:
    return sum(t - before.get(pid, 0.0) for pid, t in after.items() if pid in pids)


def _client_proc(url: str, clients: int, seconds: float, q: Any) -> None:
    q.put(asyncio.run(run_clients(url, clients, seconds, False)))


def drive(urls: list[str], clients: int, seconds: float, procs: int) -> dict[str, Any]:
    """`clients` split over `procs` client processes, each process on one of `urls`."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    per = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    workers = [ctx.Process(target=_client_proc, args=(urls[i % len(urls)], n, seconds, q))
               for i, n in enumerate(per) if n]  # fmt: skip
    for w in workers:
        w.start()
    parts = [q.get() for _ in workers]
    for w in workers:
        w.join()
    return {
        "latencies": [x for p in parts for x in p["latencies"]],
        "sent": [x for p in parts for x in p["sent"]],
        "errors": sum(p["errors"] for p in parts),
        "elapsed": max(p["elapsed"] for p in parts),
    }


async def check(db: str, sent: list[str]) -> tuple[int, int]:
    """(sent but not stored, stored but never answered), waiting a little for the last."""
    conn = await asyncpg.connect(db_url(db))
    try:
        for _ in range(50):
            unanswered = await conn.fetchval(
                "SELECT COUNT(*) FROM messages WHERE direction='inbound' AND NOT handled"
            )
            if not unanswered:
                break
            await asyncio.sleep(0.2)
        rows = await conn.fetch("SELECT external_id FROM messages WHERE direction='inbound'")
    finally:
        await conn.close()
    stored = {r["external_id"].split(":", 1)[-1] for r in rows}
    return len(set(sent) - stored), int(unanswered)


def load(nodes: int, clients: int, seconds: float, procs: int) -> dict[str, Any]:
    db = new_db()
    prefix = f"gwbench:{uuid.uuid4().hex[:8]}"
    procs_ = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            ports = [free_port() for _ in range(nodes)]
            for i, port in enumerate(ports):
                procs_.append(start_node(port, Path(tmp) / f"n{i}", db, prefix, f"n{i}"))
                wait_up(f"http://127.0.0.1:{port}/healthz", timeout=60)
            urls = [f"ws://127.0.0.1:{p}/webchat/ws" for p in ports]
            gateways = {p.pid for p in procs_}
            services = {"postgres", "redis-server"}
            before = cpu_by_process(gateways, services)
            res = drive(urls, clients, seconds, max(procs, nodes))
            after = cpu_by_process(gateways, services)
            comm = {pid: _comm(pid) for pid in after}
            replies = max(1, len(res["latencies"]))
            res["cpu_ms"] = {
                "gateway": cpu_spent(before, after, gateways) * 1000 / replies,
                "postgres": cpu_spent(before, after, {p for p, c in comm.items()
                                                      if c == "postgres"}) * 1000 / replies,
                "redis": cpu_spent(before, after, {p for p, c in comm.items()
                                                   if c == "redis-server"}) * 1000 / replies,
            }  # fmt: skip
            lost, unanswered = asyncio.run(check(db, res["sent"]))
            for p in procs_:
                p.terminate()
            for p in procs_:
                p.wait(timeout=30)
    finally:
        for p in procs_:
            if p.poll() is None:
                p.kill()
        drop_db(db)
    summarize(f"{nodes} node{'s' if nodes > 1 else ''}", res)
    cpu = res["cpu_ms"]
    print(f"{'':10} CPU per reply: gateway {cpu['gateway']:.2f} ms, PostgreSQL"
          f" {cpu['postgres']:.2f} ms, Redis {cpu['redis']:.2f} ms")  # fmt: skip
    print(f"{'':10} store check: {len(res['sent'])} sent, {lost} lost, {unanswered} unanswered")
    res.update(lost=lost, unanswered=unanswered)
    return res


def _comm(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat[stat.index("(") + 1 : stat.rindex(")")]


# ------------------------------------------------------------------ sweep

SEED_SQL = [
    "INSERT INTO customers (id, display_name, last_seq, created_at)"
    " SELECT g, 'Seed ' || g, 4, 0 FROM generate_series($1::int, $2::int) g",
    "INSERT INTO identities (customer_id, kind, value, verified, created_at)"
    " SELECT g, 'webchat', 'seed-' || g, 'signed_token', 0"
    " FROM generate_series($1::int, $2::int) g",
    "INSERT INTO conversations (customer_id, state, channel, channels, agent_state, version,"
    " created_at, updated_at) SELECT g, 'closed', 'webchat', '[\"webchat\"]', '{}', 1, 0, 0"
    " FROM generate_series($1::int, $2::int) g",
    "INSERT INTO messages (conversation_id, customer_id, seq, direction, author, channel, text,"
    " handled, created_at) SELECT c.id, c.customer_id, s,"
    " CASE WHEN s % 2 = 1 THEN 'inbound' ELSE 'outbound' END,"
    " CASE WHEN s % 2 = 1 THEN 'customer' ELSE 'agent' END, 'webchat',"
    " 'seeded message ' || s || ' of ' || c.customer_id, true, 0"
    " FROM conversations c, generate_series(1, 4) s"
    " WHERE c.customer_id BETWEEN $1 AND $2 AND c.state = 'closed'",
]


async def seed(url: str, first: int, last: int) -> float:
    started = time.perf_counter()
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            for sql in SEED_SQL:
                await conn.execute(sql, first, last)
            await conn.execute("SELECT setval(pg_get_serial_sequence('customers', 'id'), $1)", last)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return time.perf_counter() - started


async def probe(url: str, size: int, samples: int) -> dict[str, list[float]]:
    from gateway.models import ChannelKind, Identity, IdentityKind, InboundMessage, Verification
    from gateway.store.postgres import PostgresStore

    store = await PostgresStore.open(url)
    times: dict[str, list[float]] = {"lookup": [], "history": [], "ingest": []}
    rng = random.Random(size)
    try:
        for _ in range(samples):
            n = rng.randint(1, size)
            ident = Identity(kind=IdentityKind.WEBCHAT, value=f"seed-{n}",
                             verified=Verification.SIGNED_TOKEN)  # fmt: skip
            t0 = time.perf_counter()
            customer = await store.find_customer(ident)
            t1 = time.perf_counter()
            assert customer is not None
            history = await store.history(customer.id, limit=20)
            t2 = time.perf_counter()
            assert history
            await store.ingest(
                InboundMessage(
                    channel=ChannelKind.WEBCHAT,
                    identity=ident,
                    text="back again",
                    external_id=uuid.uuid4().hex,
                )
            )
            t3 = time.perf_counter()  # fmt: skip
            times["lookup"].append(t1 - t0)
            times["history"].append(t2 - t1)
            times["ingest"].append(t3 - t2)
    finally:
        await store.close()
    return times


def sweep(sizes: list[int], samples: int) -> None:
    from gateway.store import migrate
    from gateway.store.urls import PgUrl

    db = new_db()
    try:
        url = db_url(db)
        migrate.upgrade(PgUrl.parse(url).sqlalchemy)
        seeded = 0
        print(f"\n{'conversations':>13}  {'seed s':>7}  " + "  ".join(
            f"{k + ' p50/p99 ms':>22}" for k in ("lookup", "history", "ingest")))  # fmt: skip
        for size in sizes:
            took = asyncio.run(seed(url, seeded + 1, size))
            seeded = size
            times = asyncio.run(probe(url, size, samples))
            cells = []
            for kind in ("lookup", "history", "ingest"):
                lat = sorted(times[kind])
                p50 = statistics.median(lat) * 1000
                p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
                cells.append(f"{p50:>10.2f} / {p99:>9.2f}")
            print(f"{size:>13,}  {took:>7.1f}  " + "  ".join(cells))
    finally:
        drop_db(db)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--procs", type=int, default=2, help="client processes")
    ap.add_argument("--sizes", default="10000,100000", help="stored conversations, ascending")
    ap.add_argument("--samples", type=int, default=300, help="timed operations per size")
    ap.add_argument("--skip-load", action="store_true")
    ap.add_argument("--skip-sweep", action="store_true")
    args = ap.parse_args()  # fmt: skip
    print(
        f"{os.cpu_count()} CPUs; PostgreSQL {urlsplit(PG).netloc}, Redis {urlsplit(REDIS).netloc}"
    )
    failed = False
    if not args.skip_load:
        print(f"chat load: {args.clients} clients, {args.seconds:.0f} s per run")
        for nodes in (1, 2):
            res = load(nodes, args.clients, args.seconds, args.procs)
            failed |= bool(res["lost"] or res["unanswered"] or res["errors"])
    if not args.skip_sweep:
        sweep([int(s) for s in args.sizes.split(",")], args.samples)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
