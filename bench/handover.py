"""Handover to offer: how long from a customer's "get me a person" to the offer on a
rep's console, with many reps connected and a long queue.

    .venv/bin/python bench/handover.py --reps 50 --queued 500 --samples 200

Runs the real gateway (SQLite store with synchronous=FULL, real routing) on a
local port in this process, logs every rep in over HTTP and connects each rep's
console websocket. `--queued` conversations wait in the `technical` queue,
whose reps are away (so every offer decision scans the whole queue); the
measured handovers go to `general`, whose reps are available. Each sample is
timed from the customer's message entering the dispatcher (the agent's turn and
its handover included) to the offer frame arriving on a rep's websocket; the
offer is then accepted and the conversation closed over the Python API, so
capacity stays the same from one sample to the next. Then the technical reps
come back, and each of their closes is timed to the next offer out of the long
queue (ordering every waiting conversation by aged priority). Prints
p50/p95/p99/max of both. Server and consoles share this one process and loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from gateway.app import DISPATCHER, create_app
from gateway.models import (
    ChannelKind,
    HandoffBrief,
    Identity,
    IdentityKind,
    InboundMessage,
    Reply,
    Transfer,
)
from gateway.protocols import Decision, TurnContext
from gateway.routing.models import Presence, RepDraft
from gateway.routing.passwords import hash_password
from gateway.routing.state import ROUTING
from gateway.settings import load_settings

PASSWORD = "bench password"


class HandoverBrain:
    """Every message hands over to the queue it names (`technical`, `general`)."""

    history_window = 0

    async def respond(self, turn: TurnContext) -> Decision:
        queue = turn.message.text.split()[-1]
        brief = HandoffBrief(need="bench", next_step="answer", confidence=0.5, queue=queue)
        return Decision(
            actions=(Reply(text="connecting you"), Transfer(queue=queue, brief=brief)),
            intent="handover",
            confidence=0.5,
        )


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


Console = tuple[aiohttp.ClientSession, asyncio.Task[None], "asyncio.Queue[tuple[float, int]]"]


async def _console(
    base: str, name: str, seen: dict[int, asyncio.Future[float]], ready: asyncio.Event
) -> Console:
    # IP-address hosts need an "unsafe" jar to keep cookies at all (aiohttp default).
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    resp = await session.post(
        f"{base}/console/login", data=json.dumps({"username": name, "password": PASSWORD})
    )
    assert resp.status == 200, await resp.text()
    last = 0
    ws = await session.ws_connect(f"{base}/console/ws?after={last}")

    offers: asyncio.Queue[tuple[float, int]] = asyncio.Queue()

    async def read() -> None:
        async for msg in ws:
            frame = json.loads(msg.data)
            if frame.get("type") == "replayed":
                ready.set()
            if frame.get("kind") == "offer":
                offers.put_nowait((time.perf_counter(), frame["data"]["offer_id"]))
                fut = seen.get(frame["data"]["conversation_id"])
                if fut is not None and not fut.done():
                    fut.set_result(time.perf_counter())

    return session, asyncio.create_task(read()), offers


async def main(args: argparse.Namespace) -> None:
    data = Path(tempfile.mkdtemp(prefix="handover-bench-"))
    settings = load_settings(
        data_dir=data, port=0, rep_max_text=3, offer_timeout_s=60.0, log_level="WARNING"
    )
    app = create_app(settings, brain=HandoverBrain())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    base = f"http://127.0.0.1:{port}"
    service = app[ROUTING].service  # the routing service itself (this node leads)
    assert service is not None, "routing is not started"
    dispatcher = app[DISPATCHER]

    hashed = hash_password(PASSWORD)
    tech = max(1, args.reps // 5)
    reps = []
    for i in range(args.reps):
        skills = ("technical",) if i < tech else ("general",)
        draft = RepDraft(username=f"rep{i}", display_name=f"Rep {i}", password_hash=hashed,
                         skills=skills)  # fmt: skip
        rep = await service.add_rep(draft)
        presence = Presence.AWAY if i < tech else Presence.AVAILABLE
        reps.append(await service.set_presence(rep.id, presence))

    async def customer(n: int, queue: str) -> int:
        ident = Identity(kind=IdentityKind.WEBCHAT, value=f"bench-{queue}-{n}")
        ingested = await dispatcher.handle(
            InboundMessage(channel=ChannelKind.WEBCHAT, identity=ident, text=f"help {queue}")
        )
        return ingested.conversation.id

    t0 = time.perf_counter()
    for start in range(0, args.queued, 100):
        await asyncio.gather(*(customer(n, "technical")
                               for n in range(start, min(start + 100, args.queued))))  # fmt: skip
    await dispatcher.drain()
    print(f"queued {args.queued} conversations in {time.perf_counter() - t0:.1f} s "
          f"(waiting now: {len(service.router.waiting)})")  # fmt: skip

    seen: dict[int, asyncio.Future[float]] = {}
    t0 = time.perf_counter()
    consoles = []
    for rep in reps:
        ready = asyncio.Event()
        consoles.append(await _console(base, rep.username, seen, ready))
        await ready.wait()
    print(f"{len(consoles)} consoles logged in and connected in {time.perf_counter() - t0:.1f} s")

    latencies: list[float] = []
    by_conv: dict[int, int] = {}
    loop = asyncio.get_running_loop()
    for n in range(args.samples):
        ident = Identity(kind=IdentityKind.WEBCHAT, value=f"bench-measured-{n}")
        # The future must exist before the offer can arrive: register it first, by a
        # conversation id known once the message is stored (the handover comes later).
        started = time.perf_counter()
        ingested = await dispatcher.handle(
            InboundMessage(channel=ChannelKind.WEBCHAT, identity=ident, text="help general")
        )
        conv_id = ingested.conversation.id
        fut = seen.setdefault(conv_id, loop.create_future())
        arrived = await asyncio.wait_for(fut, 10)
        latencies.append((arrived - started) * 1000)
        offer = next(o for o in service.router.offers.values()
                     if service.router.waiting[o.entry_id].conversation_id == conv_id)  # fmt: skip
        by_conv[conv_id] = offer.rep_id
        await service.accept(offer.rep_id, offer.id)
        await service.close(offer.rep_id, conv_id, "bench")

    print(f"handover -> offer on a rep's websocket, {len(latencies)} samples, "
          f"{args.reps} reps connected, {args.queued} queued:")  # fmt: skip
    print(f"  p50 {statistics.median(latencies):.1f} ms   p95 {_pct(latencies, 95):.1f} ms   "
          f"p99 {_pct(latencies, 99):.1f} ms   max {max(latencies):.1f} ms")  # fmt: skip
    print(f"  reps that got offers: {len(set(by_conv.values()))} (least recently busy first)")

    # Phase 2: the technical reps come back; each close frees a slot that is offered the
    # next conversation of the long queue (priority order over everything waiting).
    for rep in reps[:tech]:
        await service.set_presence(rep.id, Presence.AVAILABLE)
    released: list[float] = []
    router = service.router
    for n in range(args.samples):
        rep = reps[n % tech]
        offers = consoles[n % tech][2]
        mine = [o for o in router.offers.values() if o.rep_id == rep.id]
        conv = await service.accept(rep.id, mine[0].id)
        announced = {o.id for o in mine}  # their frames may still be on the way: skipped
        started = time.perf_counter()
        await service.close(rep.id, conv.id, "bench")
        while True:
            arrived, offer_id = await asyncio.wait_for(offers.get(), 10)
            if offer_id not in announced and arrived > started:
                break
        released.append((arrived - started) * 1000)
    print(f"close -> next offer from the {args.queued}-deep queue, {len(released)} samples:")
    print(f"  p50 {statistics.median(released):.1f} ms   p95 {_pct(released, 95):.1f} ms   "
          f"p99 {_pct(released, 99):.1f} ms   max {max(released):.1f} ms")  # fmt: skip
    for session, task, _ in consoles:
        task.cancel()
        await session.close()
    await runner.cleanup()


def _args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--queued", type=int, default=500)
    parser.add_argument("--samples", type=int, default=200)
    return parser.parse_args(argv)


if __name__ == "__main__":
    args: Any = _args()
    asyncio.run(main(args))
