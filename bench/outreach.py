"""Outreach under a burst: N business events posted at once to the real app.

    .venv/bin/python bench/outreach.py [--events 10000] [--rate 40] [--concurrency 32]
        [--chat-clients 20] [--chat-seconds 20] [--store sqlite|URL]

Each event is an `order.delayed` for its own customer (a phone number), posted to
`POST /api/v1/outreach/events` over HTTP; a tenth of them are posted a second time
(a sender's retry). The texts go to the tests' local Twilio REST stand-in, which
records when each arrives. The send rate is `GATEWAY_OUTREACH_SEND_RATE` = `--rate`.
Reported: how fast events are accepted (202); the send rate measured at "Twilio"
(overall, and the most texts in any one second) against the configured one; the
checks that matter: every event texted once, none twice, the retries answered with
the same outreach; and web chat reply latency (p50/p99, `--chat-clients` websocket
clients in a separate process, bench/chat_load.py) before the burst and while it
is being sent.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from aiohttp.test_utils import TestServer  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from chat_load import drive  # noqa: E402

from gateway.app import create_app  # noqa: E402
from gateway.settings import load_settings  # noqa: E402
from tests.support.twilio_rest import ACCOUNT_SID, AUTH_TOKEN, FakeTwilioRest  # noqa: E402

TOKEN = "outreach-bench-token-0123456789"


def event(n: int) -> dict[str, Any]:
    return {"id": f"bench-{n}", "type": "order.delayed",
            "customer": {"phone": f"+1202555{n:04d}"},
            "data": {"order_id": str(10_000 + n), "new_eta": "Friday"}}  # fmt: skip


def chat(url: str, clients: int, seconds: float) -> tuple[float, float, int, int]:
    """(p50 ms, p99 ms, replies, client errors) of web chat clients for `seconds`."""
    res = drive(url, clients, seconds, 1, echo=False)
    lat = sorted(res["latencies"])
    if not lat:
        return float("nan"), float("nan"), 0, res["errors"]
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    return statistics.median(lat) * 1000, p99 * 1000, len(lat), res["errors"]


def busiest_second(times: list[float]) -> int:
    """The most texts that arrived within any one second."""
    most, j = 0, 0
    for i, t in enumerate(times):
        while times[j] < t - 1.0:
            j += 1
        most = max(most, i - j + 1)
    return most


async def run(events: int, concurrency: int, store: str, rate: float, chat_clients: int,
              chat_seconds: float) -> int:  # fmt: skip
    twilio = FakeTwilioRest()
    api_url = await twilio.start()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/gw.sqlite3" if store == "sqlite" else store
        settings = load_settings(
            data_dir=Path(tmp), database_url=url, api_token=TOKEN,
            public_url="https://support.example.com", secret_key="bench-secret-0123456789abcd",
            twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN,
            twilio_api_url=api_url, twilio_sms_from="+15557654321",
            outreach_quiet_hours="", outreach_max_per_day=0, outreach_send_rate=rate,
            webchat_frames_per_minute=0, webchat_history_limit=1,  # as bench/chat_load.py
            log_level="WARNING",
        )  # fmt: skip
        server = TestServer(create_app(settings))
        await server.start_server()
        base = str(server.make_url("/api/v1/outreach/events"))
        ws = str(server.make_url("/webchat/ws")).replace("http://", "ws://")
        quiet = await asyncio.to_thread(chat, ws, chat_clients, chat_seconds)
        latencies: list[float] = []
        ids: dict[str, set[str]] = collections.defaultdict(set)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in [*range(events), *range(0, events, 10)]:  # every tenth one twice
            queue.put_nowait(n)
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:

            async def poster() -> None:
                while not queue.empty():
                    n = queue.get_nowait()
                    t0 = time.perf_counter()
                    async with http.post(base, json=event(n)) as resp:
                        body = await resp.json()
                        assert resp.status == 202, body
                    latencies.append(time.perf_counter() - t0)
                    ids[f"bench-{n}"].add(body["id"])

            start = time.perf_counter()
            busy = asyncio.create_task(asyncio.to_thread(chat, ws, chat_clients, chat_seconds))
            await asyncio.gather(*(poster() for _ in range(concurrency)))
            accepted = time.perf_counter() - start
            during = await busy
            await twilio.wait_until(lambda: len(twilio.messages) >= events,
                                    within_s=events / rate * 2 + 120)  # fmt: skip
            sent = time.perf_counter() - start
            await asyncio.sleep(2.0)  # anything sent twice would show by now
        await server.close()
    await twilio.close()
    per_number = collections.Counter(m["To"] for m in twilio.messages)
    twice = sum(1 for c in per_number.values() if c > 1)
    posts = len(latencies)
    lat = sorted(latencies)
    times = twilio.message_times
    measured = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else float("nan")
    print(f"events: {events} ({posts} posts, {posts - events} retries), store: {store}")
    print(
        f"accepted: {posts / accepted:.0f} posts/s in {accepted:.1f} s; 202 latency p50 "
        f"{statistics.median(lat) * 1000:.1f} ms, p95 {lat[int(0.95 * len(lat))] * 1000:.1f} ms"
    )
    busiest = busiest_second(times)
    print(f"send rate: configured {rate:g}/s, measured {measured:.2f}/s (first to last text), "
          f"busiest second {busiest} texts; all texted after {sent:.1f} s")  # fmt: skip
    print(
        f"texts: {len(twilio.messages)}, numbers texted twice: {twice}, "
        f"retries with another outreach id: {sum(len(v) > 1 for v in ids.values())}"
    )
    for name, (p50, p99, n, errors) in (("quiet", quiet), ("during", during)):
        print(f"web chat {name:<6} ({chat_clients} clients, {chat_seconds:g} s): p50 {p50:.1f} ms, "
              f"p99 {p99:.1f} ms, {n} replies, {errors} client errors")  # fmt: skip
    ok = (len(twilio.messages) == events and twice == 0
          and all(len(v) == 1 for v in ids.values())
          and busiest <= rate + 1)  # fmt: skip
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=40.0, help="GATEWAY_OUTREACH_SEND_RATE")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--chat-clients", type=int, default=20)
    parser.add_argument("--chat-seconds", type=float, default=20.0)
    parser.add_argument("--store", default="sqlite", help="sqlite, or a postgresql:// URL")
    args = parser.parse_args()
    return asyncio.run(run(args.events, args.concurrency, args.store, args.rate,
                           args.chat_clients, args.chat_seconds))  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
