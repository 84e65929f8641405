"""Several gateway nodes as one system: the bus, fan-out channels, turn gates and
recovery of a dead node's work (wired by `create_app`; see docs/scale-out.md,
"Running several nodes").

A node keeps in memory only what it alone owns (its live sockets and calls;
the routing leader's picture, rebuilt from the store by whichever node leads).
Everything else is in the store. With a PostgreSQL store:

- a conversation's turns run one at a time across nodes (`PgTurnGate`);
- every `GATEWAY_CLUSTER_RECOVER_AFTER_S / 2` each node looks for inbound
  messages left unanswered longer than that (their node died mid-turn) and
  answers them; the gate and its re-read make sure only one node does;
- with GATEWAY_REDIS_URL, chat and call deliveries fan out over the bus (a chat
  delivery only when another node holds one of the customer's sockets).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from aiohttp import web

from gateway.bus import Bus, LocalBus, default_node_id
from gateway.fanout import FanoutChannel
from gateway.keys import BUS, CHANNELS, DISPATCHER, SETTINGS, STORE
from gateway.models import ChannelKind
from gateway.protocols import Channel
from gateway.settings import Settings

log = logging.getLogger(__name__)

# Channels whose customers are connected to one node (sockets, calls).
NODE_BOUND = (ChannelKind.WEBCHAT, ChannelKind.PHONE)


async def open_bus(settings: Settings) -> Bus:
    node_id = settings.node_id or default_node_id()
    if settings.redis_url is None:
        return LocalBus(node_id)
    from gateway.bus_redis import RedisBus

    return await RedisBus.open(settings.redis_url.get_secret_value(), settings.redis_prefix,
                               node_id)  # fmt: skip


async def bus_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    bus = await open_bus(settings)
    app[BUS] = bus
    if not bus.shared and not settings.store_url.startswith("sqlite:"):
        log.warning("PostgreSQL store without GATEWAY_REDIS_URL: this node runs alone;"
                    " set it on every node to run several")  # fmt: skip
    log.info("node %s (%s)", bus.node_id, "bus on Redis" if bus.shared else "single node")
    try:
        yield
    finally:
        await bus.close()


async def cluster_ctx(app: web.Application) -> AsyncIterator[None]:
    """After the dispatcher: gates its turns and recovers other nodes' messages."""
    from gateway.store.pg_locks import PgTurnGate
    from gateway.store.postgres import PostgresStore

    bus = app[BUS]
    store = app[STORE]
    dispatcher = app[DISPATCHER]
    if bus.shared:
        channels = app[CHANNELS]
        for kind in NODE_BOUND:
            if kind in channels:
                channels[kind] = _fan_out(channels[kind], bus)
    if not isinstance(store, PostgresStore):
        yield
        return
    gate = PgTurnGate(store.url.dsn, store.fresh_turn)
    dispatcher.gate = gate
    sweeper = asyncio.create_task(_sweep(app, store))
    try:
        yield
    finally:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        await dispatcher.drain()
        dispatcher.gate = None
        await gate.close()


def _fan_out(channel: Channel, bus: Bus) -> FanoutChannel:
    """Web chat records each socket on the bus under its identity key, so its
    deliveries go to other nodes only when one holds the customer's socket; calls
    (rare deliveries, held by call) are always broadcast."""
    from channels.webchat.hub import WebchatChannel

    if not isinstance(channel, WebchatChannel):
        return FanoutChannel(channel, bus)

    async def held(key: str, delta: int) -> None:
        await bus.hold(f"chat:{key}", delta)

    channel.hub.holder = held
    return FanoutChannel(
        channel, bus, holders=lambda customer: [f"chat:{i.key}" for i in customer.identities]
    )


async def _sweep(app: web.Application, store: object) -> None:
    """Answer messages another (dead) node left unanswered; see the module docstring."""
    from gateway.store.postgres import PostgresStore

    assert isinstance(store, PostgresStore)
    after = app[SETTINGS].cluster_recover_after_s
    dispatcher = app[DISPATCHER]
    while True:
        await asyncio.sleep(after / 2)
        try:
            stale = await store.unhandled_messages(datetime.now(UTC) - timedelta(seconds=after))
            resumed = await dispatcher.resume(stale)
        except Exception as exc:  # the database is unwell: the next sweep tries again
            log.warning("recovery sweep failed: %s", exc)
            continue
        if resumed:
            log.info("answering %d messages left unanswered (a node stopped mid-turn?)",
                     resumed)  # fmt: skip


__all__ = ["NODE_BOUND", "bus_ctx", "cluster_ctx", "open_bus"]
