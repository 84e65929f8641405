"""`RedisBus` holdings on a real Redis: which node holds what (a console, a chat
socket), read by the others in one round trip; a node's holdings go with it and
come back whole after Redis lost them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from gateway.bus_redis import NODE_TTL_S, RedisBus
from tests.support import services


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    name = services.redis_prefix()
    yield name
    client = redis.Redis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(f"{name}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def test_a_key_held_on_another_live_node_is_seen_at_once(redis_url: str, prefix: str) -> None:
    a = await RedisBus.open(redis_url, prefix, "a")
    b = await RedisBus.open(redis_url, prefix, "b")
    try:
        keys = ["chat:webchat:v1", "chat:account:C-1"]
        assert not await a.held_elsewhere(keys)
        await b.hold("chat:account:C-1", +1)
        assert await a.held_elsewhere(keys)  # as soon as `hold` returned
        assert not await b.held_elsewhere(keys)  # its own do not count
        assert not await a.held_elsewhere(["chat:webchat:v2"])
        await b.hold("chat:account:C-1", +1)  # a second tab
        await b.hold("chat:account:C-1", -1)
        assert await a.held_elsewhere(keys)
        await b.hold("chat:account:C-1", -1)
        assert not await a.held_elsewhere(keys)
        assert await a.held("chat:account:C-1") == 0
    finally:
        await a.close()
        await b.close()


async def test_a_dead_nodes_holdings_do_not_count(redis_url: str, prefix: str) -> None:
    a = await RedisBus.open(redis_url, prefix, "a")
    b = await RedisBus.open(redis_url, prefix, "b", heartbeat_s=3600)
    try:
        await b.hold("chat:webchat:v1", +1)
        assert await a.held_elsewhere(["chat:webchat:v1"])
        # B stops beating (killed): once its last heartbeat is older than the TTL...
        client = redis.Redis.from_url(redis_url)
        try:
            await client.zadd(f"{prefix}:nodes", {"b": time.time() - NODE_TTL_S - 1})
        finally:
            await client.aclose()
        assert not await a.held_elsewhere(["chat:webchat:v1"])
    finally:
        await a.close()
        await b.close()


async def test_holdings_lost_by_redis_are_written_again_whole(redis_url: str, prefix: str) -> None:
    a = await RedisBus.open(redis_url, prefix, "a")
    b = await RedisBus.open(redis_url, prefix, "b", heartbeat_s=0.2)
    client = redis.Redis.from_url(redis_url)
    try:
        await b.hold("chat:webchat:v1", +1)
        await b.hold("chat:webchat:v2", +1)
        await b.hold("chat:webchat:v2", -1)
        await client.delete(f"{prefix}:holds:b")  # Redis restarted empty, say
        assert not await a.held_elsewhere(["chat:webchat:v1"])
        async with asyncio.timeout(5):
            while not await a.held_elsewhere(["chat:webchat:v1"]):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert await client.hgetall(f"{prefix}:holds:b") == {b"chat:webchat:v1": b"1"}
    finally:
        await client.aclose()
        await a.close()
        await b.close()
