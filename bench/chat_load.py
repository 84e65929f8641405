"""Web chat load: N concurrent clients over real websockets against a gateway.

    .venv/bin/python bench/chat_load.py --clients 200 --seconds 20

Starts a gateway (embedded SQLite, embedded agent) in a subprocess on a free
port unless `--url` names a running one, drives it from `--procs` client
processes, and prints messages/s and p50/p99 reply latency (message sent to the
agent's reply received). Then it runs the same clients against a bare aiohttp
websocket echo server for the ratio. Finally it checks, in the gateway's own
database, that every message a client sent is stored and answered.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "how long does shipping take?",
    "what payment methods do you accept",
    "hello",
    "thanks!",
    "can I change my delivery address",
    "what are your opening hours",
    "do you ship internationally",
    "how do I return an item",
    "is there a warranty",
    "how do invoices work",
]
PREFIXES = ["", "hi, ", "hello! ", "hey there, ", "good morning, "]
ADJECTIVES = [
    "red",
    "blue",
    "small",
    "large",
    "new",
    "old",
    "spare",
    "wooden",
    "steel",
    "glass",
    "cheap",
    "fancy",
]
NOUNS = [
    "lamp",
    "chair",
    "kettle",
    "blender",
    "mixer",
    "toaster",
    "drill",
    "jacket",
    "helmet",
    "tent",
    "stove",
    "desk",
]


def message_text(rng: random.Random) -> str:
    """Varied customer texts, so no cache sees the same few strings all run long."""
    text = rng.choice(PREFIXES) + rng.choice(QUESTIONS)
    if rng.random() < 0.5:
        text += f" for my {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} #{rng.randint(1, 99999)}"
    return text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------ clients


async def chat_client(
    session: aiohttp.ClientSession, url: str, until: float, echo: bool, out: dict[str, Any]
) -> None:
    latencies: list[float] = out["latencies"]
    async with session.ws_connect(url, max_msg_size=1 << 20) as ws:
        if not echo:
            await ws.send_json(
                {"type": "hello", "visitor_token": None, "user": None, "last_seq": None}
            )
            while True:  # welcome, then history
                frame = json.loads((await ws.receive()).data)
                if frame["type"] == "history":
                    break
        rng = random.Random()
        while time.perf_counter() < until:
            client_id = uuid.uuid4().hex
            text = message_text(rng)
            sent = time.perf_counter()
            await ws.send_json({"type": "message", "text": text, "client_id": client_id})
            out["sent"].append(client_id)
            while True:
                raw = await ws.receive()
                if raw.type != aiohttp.WSMsgType.TEXT:
                    raise RuntimeError(f"socket closed: {raw!r}")
                frame = json.loads(raw.data)
                if echo or (frame.get("type") == "message" and frame.get("author") != "customer"):
                    break
            latencies.append(time.perf_counter() - sent)


async def run_clients(url: str, clients: int, seconds: float, echo: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"latencies": [], "sent": [], "errors": 0}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        until = start + seconds
        results = await asyncio.gather(
            *(chat_client(session, url, until, echo, out) for _ in range(clients)),
            return_exceptions=True,
        )
        out["elapsed"] = time.perf_counter() - start
    out["errors"] = sum(1 for r in results if isinstance(r, BaseException))
    return out


def _client_proc(url: str, clients: int, seconds: float, echo: bool, q: Any) -> None:
    q.put(asyncio.run(run_clients(url, clients, seconds, echo)))


def drive(url: str, clients: int, seconds: float, procs: int, echo: bool) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    per = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    workers = [ctx.Process(target=_client_proc, args=(url, n, seconds, echo, q)) for n in per if n]
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


def summarize(name: str, res: dict[str, Any]) -> float:
    lat = sorted(res["latencies"])
    rate = len(lat) / res["elapsed"]
    p50 = statistics.median(lat) * 1000 if lat else float("nan")
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else float("nan")
    print(
        f"{name:<10} {len(lat):>8} replies  {rate:>9.0f} msg/s  p50 {p50:7.1f} ms  "
        f"p99 {p99:7.1f} ms  client errors {res['errors']}"
    )
    return rate


# ------------------------------------------------------------------ servers


def start_gateway(port: int, data_dir: Path, synchronous: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "GATEWAY_PORT": str(port),
        "GATEWAY_DATA_DIR": str(data_dir),
        "GATEWAY_LOG_LEVEL": "WARNING",
        "GATEWAY_SQLITE_SYNCHRONOUS": synchronous,
        "GATEWAY_WEBCHAT_HISTORY_LIMIT": "1",
        # Each bench client stands for many customers' traffic on one socket.
        "GATEWAY_WEBCHAT_FRAMES_PER_MINUTE": "0",
    }
    return subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve"], env=env, cwd=ROOT)


async def _echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.TEXT:
            await ws.send_str(msg.data)
    return ws


def _echo_server(port: int) -> None:
    app = web.Application()
    app.router.add_get("/ws", _echo)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def wait_up(url: str, timeout: float = 30.0) -> None:
    async def probe() -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    async with session.get(url) as resp:
                        if resp.status < 500:
                            return
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{url} did not come up")
                await asyncio.sleep(0.1)

    asyncio.run(probe())


def check_store(db: Path, sent: list[str]) -> tuple[int, int]:
    """(messages sent but not stored, stored but unanswered)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    stored = {row[0].split(":", 1)[-1] for row in conn.execute(
        "SELECT external_id FROM messages WHERE direction='inbound'")}  # fmt: skip
    unanswered = conn.execute(
        "SELECT COUNT(*) FROM messages WHERE direction='inbound' AND handled=0"
    ).fetchone()[0]
    conn.close()
    return len(set(sent) - stored), int(unanswered)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--procs", type=int, default=2, help="client processes")
    ap.add_argument("--url", help="ws URL of a running gateway (skips start and store check)")
    ap.add_argument("--synchronous", default="FULL", help="SQLite synchronous pragma for the run")
    ap.add_argument("--no-echo", action="store_true", help="skip the echo baseline")
    args = ap.parse_args()

    print(f"clients {args.clients}, {args.seconds:.0f} s, {args.procs} client processes, "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    if args.url:
        res = drive(args.url, args.clients, args.seconds, args.procs, echo=False)
        summarize("gateway", res)
        return
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        proc = start_gateway(port, Path(tmp), args.synchronous)
        try:
            wait_up(f"http://127.0.0.1:{port}/healthz")
            res = drive(
                f"ws://127.0.0.1:{port}/webchat/ws", args.clients, args.seconds, args.procs, False
            )
            time.sleep(1.0)  # let the last turns commit
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        gw_rate = summarize("gateway", res)
        lost, unanswered = check_store(Path(tmp) / "gateway.sqlite3", res["sent"])
        print(f"store check: {len(res['sent'])} sent, {lost} not stored, {unanswered} unanswered")
    if args.no_echo:
        return
    port = free_port()
    echo = mp.get_context("spawn").Process(target=_echo_server, args=(port,), daemon=True)
    echo.start()
    try:
        wait_up(f"http://127.0.0.1:{port}/ws")
        base = drive(f"ws://127.0.0.1:{port}/ws", args.clients, args.seconds, args.procs, echo=True)
    finally:
        echo.terminate()
    echo_rate = summarize("echo", base)
    print(f"ratio gateway/echo: {gw_rate / echo_rate:.3f}")


if __name__ == "__main__":
    main()
