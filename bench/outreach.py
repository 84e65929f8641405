"""Outreach under a burst: N business events posted at once to the real app.

    .venv/bin/python bench/outreach.py [--events 2000] [--concurrency 32] [--store sqlite|URL]

Each event is an `order.delayed` for its own customer (a phone number), posted to
`POST /api/v1/outreach/events` over HTTP; a tenth of them are posted a second time
(a sender's retry). The texts go to the tests' local Twilio REST stand-in. Reported:
how fast events are accepted (202), how long until every text was accepted by
"Twilio", and the checks that matter: every event texted once, none twice, the
retries answered with the same outreach.
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

from gateway.app import create_app  # noqa: E402
from gateway.settings import load_settings  # noqa: E402
from tests.support.twilio_rest import ACCOUNT_SID, AUTH_TOKEN, FakeTwilioRest  # noqa: E402

TOKEN = "outreach-bench-token-0123456789"


def event(n: int) -> dict[str, Any]:
    return {"id": f"bench-{n}", "type": "order.delayed",
            "customer": {"phone": f"+1202555{n:04d}"},
            "data": {"order_id": str(10_000 + n), "new_eta": "Friday"}}  # fmt: skip


async def run(events: int, concurrency: int, store: str) -> int:
    twilio = FakeTwilioRest()
    api_url = await twilio.start()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/gw.sqlite3" if store == "sqlite" else store
        settings = load_settings(
            data_dir=Path(tmp), database_url=url, api_token=TOKEN,
            public_url="https://support.example.com", secret_key="bench-secret-0123456789abcd",
            twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN,
            twilio_api_url=api_url, twilio_sms_from="+15557654321",
            outreach_quiet_hours="", outreach_max_per_day=0, log_level="WARNING",
        )  # fmt: skip
        server = TestServer(create_app(settings))
        await server.start_server()
        base = str(server.make_url("/api/v1/outreach/events"))
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
            await asyncio.gather(*(poster() for _ in range(concurrency)))
            accepted = time.perf_counter() - start
            await twilio.wait_until(lambda: len(twilio.messages) >= events, within_s=600)
            sent = time.perf_counter() - start
            await asyncio.sleep(2.0)  # anything sent twice would show by now
        await server.close()
    await twilio.close()
    per_number = collections.Counter(m["To"] for m in twilio.messages)
    twice = sum(1 for c in per_number.values() if c > 1)
    posts = len(latencies)
    lat = sorted(latencies)
    print(f"events: {events} ({posts} posts, {posts - events} retries), store: {store}")
    print(
        f"accepted: {posts / accepted:.0f} posts/s; 202 latency p50 "
        f"{statistics.median(lat) * 1000:.1f} ms, p95 {lat[int(0.95 * len(lat))] * 1000:.1f} ms"
    )
    print(f"all texted after {sent:.1f} s: {events / sent:.0f} texts/s")
    print(
        f"texts: {len(twilio.messages)}, numbers texted twice: {twice}, "
        f"retries with another outreach id: {sum(len(v) > 1 for v in ids.values())}"
    )
    ok = len(twilio.messages) == events and twice == 0 and all(len(v) == 1 for v in ids.values())
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--store", default="sqlite", help="sqlite, or a postgresql:// URL")
    args = parser.parse_args()
    return asyncio.run(run(args.events, args.concurrency, args.store))


if __name__ == "__main__":
    sys.exit(main())
