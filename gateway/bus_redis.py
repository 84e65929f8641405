"""`RedisBus`: the bus between several gateway nodes, on Redis pub/sub.

Channels (under GATEWAY_REDIS_PREFIX): `b:<topic>` for broadcasts, `n:<node>`
for calls to a node and the replies to its own calls, `leader` for calls to
the routing leader (subscribed only while this node leads). Pub/sub fits: it
is the live path only (see gateway/bus.py), and a publish says how many nodes
heard it, so a call to a leader being elected waits and tries again instead
of timing out blind. Holdings are a hash per node that expires unless the
node's heartbeat renews it, so a killed node's holdings vanish with it.

Holdings are written as the node's own counts, one write at a time in the
order they change (so Redis never holds an older count than the last one
written), and written again whole when the hash was lost (Redis restarted, or
the node was cut off longer than NODE_TTL_S). `held_elsewhere` asks, in one
round trip (a Lua script), whether any other live node holds one of some keys:
a chat delivery is broadcast only then (gateway/fanout.py).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from gateway.bus import LEADER, Data, Handler, RemoteError, Server, error_payload, raise_remote
from gateway.errors import ConfigError
from gateway.redaction import redact_url

log = logging.getLogger(__name__)

HEARTBEAT_S = 5.0
NODE_TTL_S = 20  # a node silent this long is gone: its holdings no longer count

# ARGV: prefix, this node, the oldest live heartbeat, then the keys. 1 when a live node
# other than this one holds one of the keys.
_HELD_ELSEWHERE = """
local nodes = redis.call('ZRANGEBYSCORE', ARGV[1] .. ':nodes', ARGV[3], '+inf')
for _, node in ipairs(nodes) do
  if node ~= ARGV[2] then
    local counts = redis.call('HMGET', ARGV[1] .. ':holds:' .. node, unpack(ARGV, 4))
    for _, n in ipairs(counts) do
      if n and tonumber(n) > 0 then return 1 end
    end
  end
end
return 0
"""


class RedisBus:
    """See the module docstring. Open with `await RedisBus.open(...)`."""

    shared = True

    def __init__(
        self, client: redis.Redis, prefix: str, node_id: str, *, heartbeat_s: float = HEARTBEAT_S
    ) -> None:
        self.node_id = node_id
        self._heartbeat_s = heartbeat_s
        self._client = client
        self._prefix = prefix
        self._handlers: dict[str, list[Handler]] = {}
        self._servers: dict[str, Server] = {}
        self._pending: dict[str, asyncio.Future[Data]] = {}
        self._channels = {self._node_channel(node_id)}
        self._pubsub: Any = None
        self._reconnect_hooks: list[Callable[[], None]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._subscribed = asyncio.Event()
        self._holds: collections.Counter[str] = collections.Counter()  # ours, as in Redis
        self._holds_written = asyncio.Lock()  # holdings are written in the order they change
        self._holds_lost = False  # a write failed: Redis may hold wrong counts until rewritten
        self._held_elsewhere = client.register_script(_HELD_ELSEWHERE)

    @classmethod
    async def open(
        cls, url: str, prefix: str, node_id: str, *, heartbeat_s: float = HEARTBEAT_S
    ) -> RedisBus:
        client = redis.Redis.from_url(url, socket_connect_timeout=5, health_check_interval=15)
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise ConfigError(
                f"GATEWAY_REDIS_URL: cannot reach Redis at {redact_url(url)}: {exc}"
            ) from exc
        bus = cls(client, prefix, node_id, heartbeat_s=heartbeat_s)
        try:  # live (and holding nothing yet) before it serves anyone
            await client.delete(bus._holds_key)
            await client.zadd(f"{prefix}:nodes", {node_id: time.time()})
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise ConfigError(f"GATEWAY_REDIS_URL: Redis refused the node: {exc}") from exc
        bus._loops = [asyncio.create_task(bus._listen()), asyncio.create_task(bus._heartbeat())]
        async with asyncio.timeout(10):
            await bus._subscribed.wait()
        return bus

    def _node_channel(self, node: str) -> str:
        return f"{self._prefix}:n:{node}"

    def _target(self, target: str) -> str:
        return f"{self._prefix}:leader" if target == LEADER else self._node_channel(target)

    # ------------------------------------------------------------ broadcast

    def subscribe(self, topic: str, handler: Handler) -> None:
        channel = f"{self._prefix}:b:{topic}"
        self._handlers.setdefault(channel, []).append(handler)
        self._add_channel(channel)

    async def broadcast(self, topic: str, data: Data) -> None:
        body = json.dumps({"from": self.node_id, "data": data}, separators=(",", ":"))
        try:
            await self._client.publish(f"{self._prefix}:b:{topic}", body)
        except (RedisError, OSError) as exc:  # the live path only: clients resume from the store
            log.warning("bus: broadcast on %s lost: %s", topic, exc)

    # ----------------------------------------------------------------- calls

    def serve(self, method: str, server: Server) -> None:
        self._servers[method] = server

    async def call(self, target: str, method: str, data: Data, *, timeout_s: float = 10.0) -> Data:
        call_id = uuid.uuid4().hex
        future: asyncio.Future[Data] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        body = json.dumps({"id": call_id, "from": self.node_id, "method": method, "data": data},
                          separators=(",", ":"))  # fmt: skip
        try:
            async with asyncio.timeout(timeout_s):
                while not await self._client.publish(self._target(target), body):  # noqa: ASYNC110
                    await asyncio.sleep(0.1)  # nobody listens yet (a leader being elected)
                reply = await future
        except TimeoutError as exc:
            raise RemoteError(f"{method}: no answer from {target} in {timeout_s:g} s") from exc
        except (RedisError, OSError) as exc:
            raise RemoteError(f"{method}: the bus failed: {exc}") from exc
        finally:
            self._pending.pop(call_id, None)
        if "error" in reply:
            raise_remote(reply["error"])
        result: Data = reply.get("data") or {}
        return result

    async def lead(self, leading: bool) -> None:
        channel = f"{self._prefix}:leader"
        if leading:
            self._add_channel(channel)
        elif channel in self._channels:
            self._channels.discard(channel)
            if self._pubsub is not None:
                with contextlib.suppress(RedisError, OSError):
                    await self._pubsub.unsubscribe(channel)

    async def _answer(self, request: Data) -> None:
        reply: Data = {"reply": request.get("id")}
        server = self._servers.get(str(request.get("method")))
        try:
            if server is None:
                raise RemoteError(f"nothing answers {request.get('method')!r} here")
            reply["data"] = await server(request.get("data") or {})
        except Exception as exc:  # every failure goes back to the caller
            if not isinstance(exc, (ValueError, LookupError)):
                log.info("bus: %s failed: %r", request.get("method"), exc)
            reply["error"] = error_payload(exc)
        body = json.dumps(reply, separators=(",", ":"), default=str)
        with contextlib.suppress(RedisError, OSError):
            await self._client.publish(self._node_channel(str(request.get("from"))), body)

    # ------------------------------------------------------------- holdings

    @property
    def _holds_key(self) -> str:
        return f"{self._prefix}:holds:{self.node_id}"

    async def hold(self, key: str, delta: int) -> None:
        async with self._holds_written:
            self._holds[key] += delta
            count = self._holds[key]
            if count <= 0:
                del self._holds[key]
            if self._holds_lost:
                return  # Redis failed: the heartbeat writes them all once it answers again
            try:
                async with self._client.pipeline(transaction=True) as pipe:
                    if count > 0:
                        pipe.hset(self._holds_key, key, count)
                    else:
                        pipe.hdel(self._holds_key, key)
                    pipe.expire(self._holds_key, NODE_TTL_S)
                    await pipe.execute()
            except (RedisError, OSError) as exc:  # written whole with the next heartbeat
                log.warning("bus: cannot record %s: %s", key, exc)
                self._holds_lost = True

    async def held_elsewhere(self, keys: list[str]) -> bool:
        if not keys:
            return False
        try:
            found = await self._held_elsewhere(
                args=[self._prefix, self.node_id, time.time() - NODE_TTL_S, *keys]
            )
        except (RedisError, OSError) as exc:
            log.warning("bus: cannot read holdings: %s", exc)
            return True  # not known: broadcast (it is the live path only)
        return bool(found)

    async def held(self, key: str) -> int:
        try:
            nodes: list[Any] = await self._client.zrangebyscore(
                f"{self._prefix}:nodes", time.time() - NODE_TTL_S, "+inf"
            )
            async with self._client.pipeline(transaction=False) as pipe:
                for node in nodes:
                    name = node.decode() if isinstance(node, bytes) else str(node)
                    pipe.hget(f"{self._prefix}:holds:{name}", key)
                counts = await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("bus: cannot read %s: %s", key, exc)
            return 0
        return sum(max(int(c), 0) for c in counts if c is not None)

    async def _heartbeat(self) -> None:
        while True:
            try:
                await self._client.zadd(f"{self._prefix}:nodes", {self.node_id: time.time()})
                async with self._holds_written:
                    kept = await self._client.expire(self._holds_key, NODE_TTL_S)
                    if self._holds_lost or (not kept and self._holds):
                        # A write failed, or the hash is gone (Redis restarted, a long
                        # cut-off): write them all again, as they are now.
                        log.info("bus: writing this node's holdings again")
                        counts: dict[Any, Any] = dict(self._holds)
                        async with self._client.pipeline(transaction=True) as pipe:
                            pipe.delete(self._holds_key)
                            if counts:
                                pipe.hset(self._holds_key, mapping=counts)
                                pipe.expire(self._holds_key, NODE_TTL_S)
                            await pipe.execute()
                        self._holds_lost = False
            except (RedisError, OSError) as exc:
                log.warning("bus: heartbeat failed: %s", exc)
            await asyncio.sleep(self._heartbeat_s)

    # -------------------------------------------------------------- listening

    def on_reconnect(self, hook: Callable[[], None]) -> None:
        self._reconnect_hooks.append(hook)

    def _add_channel(self, channel: str) -> None:
        if channel in self._channels:
            return
        self._channels.add(channel)
        if self._pubsub is not None:
            self._spawn(self._pubsub.subscribe(channel))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _listen(self) -> None:
        connected_before = False
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(*self._channels)
                self._pubsub = pubsub
                self._subscribed.set()
                if connected_before:  # broadcasts may have been missed meanwhile
                    log.info("bus: reconnected to Redis")
                    for hook in self._reconnect_hooks:
                        hook()
                connected_before = True
                while True:
                    msg = await pubsub.get_message(timeout=1.0)
                    if msg is not None and msg.get("type") == "message":
                        await self._dispatch(msg["channel"].decode(), msg["data"])
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                raise
            except (RedisError, OSError) as exc:
                log.warning("bus: lost Redis (%s); reconnecting", exc)
                self._pubsub = None
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                await asyncio.sleep(0.5)

    async def _dispatch(self, channel: str, raw: bytes) -> None:
        try:
            envelope = json.loads(raw)
        except ValueError:
            log.warning("bus: malformed message on %s dropped", channel)
            return
        if "reply" in envelope:
            future = self._pending.get(str(envelope["reply"]))
            if future is not None and not future.done():
                future.set_result(envelope)
            return
        if "method" in envelope:
            self._spawn(self._answer(envelope))
            return
        if envelope.get("from") == self.node_id:
            return  # our own broadcast
        for handler in self._handlers.get(channel, ()):
            try:
                await handler(envelope.get("data") or {})
            except Exception:  # one bad handler must not stop the bus
                log.exception("bus: handler for %s failed", channel)

    async def close(self) -> None:
        for task in [*self._loops, *self._tasks]:
            task.cancel()
        await asyncio.gather(*self._loops, *self._tasks, return_exceptions=True)
        with contextlib.suppress(RedisError, OSError):
            await self._client.zrem(f"{self._prefix}:nodes", self.node_id)
            await self._client.delete(self._holds_key)
        await self._client.aclose()


__all__ = ["RedisBus"]
