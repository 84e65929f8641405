"""Outbound calls of proactive outreach: how long a person who picks up waits in silence.

    .venv/bin/python bench/outbound_call.py                 # 20 calls, 1 and 4 at once
    .venv/bin/python bench/outbound_call.py --calls 40 --together 1 8

The real app in this process (SQLite store, embedded agent, Silero VAD, espeak-ng at
170 wpm; no speech model is loaded: nobody speaks back) places each call through the
real `twilio` client to the local REST stand-in (tests/support/twilio_rest.py), which
answers it as a person the way Twilio does: the signed answer webhook, then the Media
Stream of its `<Connect><Stream>`. Per call it measures

- `place`: `OutboundCalls.place` (the REST request, storing the call's event);
- `answer`: the answer webhook's round trip (AnsweredBy=human to the TwiML);
- `first audio`: the stream's `start` to the first frame of the agent's opening
  (the conversation opened, the opening stored and synthesized);
- `silence`: the webhook sent to that first frame: what the person hears of us
  after machine detection has let the call through.

`--together N` answers N calls at once (their webhooks and streams overlap). It
prints p50 and p95 per level in milliseconds. The figures depend on the machine's
load (printed with them).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.app import create_app
from gateway.keys import OUTBOUND_CALLER, STORE
from gateway.models import ChannelKind, Identity, IdentityKind
from gateway.protocols import Transcript
from gateway.settings import load_settings
from tests.support.twilio_rest import ACCOUNT_SID, AUTH_TOKEN, FakeTwilioRest

OPENING = (
    "Hi Jane, it's about your order 1001: it's running two days late. It should reach you"
    " on Friday."
)
VOICEMAIL = "Hi Jane, this is support about your order 1001. Please call us back."


class Deaf:
    """No speech model: nobody speaks back in this bench."""

    async def transcribe(self, pcm16k: Any) -> Transcript:
        return Transcript(text="", confidence=0.0, duration_ms=0)

    async def close(self) -> None:
        return None


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def one_call(
    calls: Any, rest: FakeTwilioRest, base: str, conversation: tuple[int, int], n: int
) -> dict[str, float]:
    began = time.perf_counter()
    sid = await calls.place(
        to=f"+1555123{n:04d}", conversation_id=conversation[0], customer_id=conversation[1],
        outreach_id=f"bench-{n}", opening=OPENING, voicemail=VOICEMAIL,
    )  # fmt: skip
    placed = time.perf_counter()
    loop = asyncio.get_running_loop()
    sent = loop.time()
    answered = await rest.answer_call(sid, base, "human")
    webhook = loop.time()
    phone = answered.phone
    assert phone is not None
    async with asyncio.timeout(30):
        await phone.until(lambda: bool(phone.received.media))
    first = phone.received.media[0][0]
    await phone.hang_up()
    return {
        "place": (placed - began) * 1000,
        "answer": (webhook - sent) * 1000,
        "first audio": (first - phone.started_at) * 1000,
        "silence": (first - sent) * 1000,
    }


async def main(args: argparse.Namespace) -> None:
    rest = FakeTwilioRest()
    api = await rest.start()
    with tempfile.TemporaryDirectory() as data:
        settings = load_settings(
            data_dir=Path(data), public_url="https://support.example.com",
            twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN, twilio_api_url=api,
            outbound_caller_id="+15550009999", phone_end_of_turn="text",
        )  # fmt: skip
        app = create_app(settings, transcriber=Deaf())
        client: TestClient[Any, Any] = TestClient(TestServer(app))
        await client.start_server()
        try:
            base = str(client.make_url("")).rstrip("/")
            store, calls = app[STORE], app[OUTBOUND_CALLER]
            n = 0
            print(f"load average {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()})")
            for together in args.together:
                rows: list[dict[str, float]] = []
                while len(rows) < args.calls:
                    batch = []
                    for _ in range(together):
                        n += 1
                        who = Identity(kind=IdentityKind.PHONE, value=f"+1555123{n:04d}")
                        opened = await store.open_session(who, ChannelKind.SMS)
                        ids = (opened.conversation.id, opened.customer.id)
                        batch.append(one_call(calls, rest, base, ids, n))
                    rows.extend(await asyncio.gather(*batch))
                print(f"\n{together} at once, {len(rows)} calls (ms):")
                for name in rows[0]:
                    values = [row[name] for row in rows]
                    print(f"  {name:>12}: p50 {statistics.median(values):7.1f}"
                          f"  p95 {pct(values, 0.95):7.1f}")  # fmt: skip
            print(f"\nload average {os.getloadavg()[0]:.2f}")
        finally:
            await client.close()
            await rest.close()


if __name__ == "__main__":
    logging.disable(logging.INFO)  # the figures, not every call's log lines
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20, help="calls per level")
    parser.add_argument("--together", type=int, nargs="+", default=[1, 4])
    asyncio.run(main(parser.parse_args()))
