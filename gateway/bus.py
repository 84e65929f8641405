"""The event bus between gateway nodes, behind one narrow protocol.

What crosses nodes: broadcasts (a chat message for sockets that may be on any
node, a hint that console events were committed, a call's status for the node
holding its stream), calls to one node or to the routing leader (a rep's
action, a warm transfer's TwiML), and "holdings" (which node has a console of
which rep open). The bus is only ever the live path: what must survive is in
the store first, and every client resumes from the store by sequence number,
so a lost broadcast delays an update but never loses it.

`LocalBus` is the embedded default (one process, no Redis): broadcasts have
nobody else to reach, calls run here. `gateway.bus_redis.RedisBus` links
several nodes (GATEWAY_REDIS_URL).
"""

from __future__ import annotations

import collections
import os
import re
import socket
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from gateway.errors import BackendError, ConflictError, GatewayError, NotFoundError

LEADER = "@leader"  # call target: whichever node routes conversations now

Data = dict[str, Any]
Handler = Callable[[Data], Awaitable[None]]
Server = Callable[[Data], Awaitable[Data]]


class RemoteError(GatewayError):
    """A call to another node failed there or could not reach it."""


class Bus(Protocol):
    """See the module docstring."""

    node_id: str
    shared: bool  # False: this node is the only one (nothing to broadcast to)

    def subscribe(self, topic: str, handler: Handler) -> None:
        """Run `handler` for each broadcast on `topic` from another node, in order."""
        ...

    async def broadcast(self, topic: str, data: Data) -> None:
        """Send `data` to every other node's `topic` handlers (at most once, live)."""
        ...

    def serve(self, method: str, server: Server) -> None:
        """Answer calls of `method` made to this node (or to LEADER while leading)."""
        ...

    async def call(self, target: str, method: str, data: Data, *, timeout_s: float = 10.0) -> Data:
        """Call `method` on node `target` (or LEADER); its errors are raised here
        (NotFoundError, ConflictError, ValueError ... by name; others RemoteError)."""
        ...

    async def lead(self, leading: bool) -> None:
        """Start or stop answering calls made to LEADER."""
        ...

    async def hold(self, key: str, delta: int) -> None:
        """Count something this node holds (+1 / -1); it expires with the node."""
        ...

    async def held(self, key: str) -> int:
        """How many of `key` all live nodes hold."""
        ...

    async def held_elsewhere(self, keys: list[str]) -> bool:
        """Whether a live node other than this one holds any of `keys` (read now: a
        `hold` another node finished before this call is seen; True when unknown)."""
        ...

    def on_reconnect(self, hook: Callable[[], None]) -> None:
        """`hook` runs after the bus was cut off (broadcasts may have been missed)."""
        ...

    async def close(self) -> None: ...


# Errors a call re-raises by name on the caller's side. A subclass travels as the
# nearest of these it derives from (a RoutingError as a ConflictError: still a 409).
ERRORS: dict[str, type[Exception]] = {
    "NotFoundError": NotFoundError,
    "ConflictError": ConflictError,
    "BackendError": BackendError,
    "ValueError": ValueError,
}


def error_payload(exc: BaseException) -> Data:
    known = (c.__name__ for c in type(exc).__mro__ if ERRORS.get(c.__name__) is c)
    name = next(known, "RemoteError")
    return {"type": name, "message": str(exc)}


def raise_remote(error: Data) -> None:
    cls = ERRORS.get(str(error.get("type")), RemoteError)
    raise cls(str(error.get("message", "remote call failed")))


def default_node_id() -> str:
    """`<host>-<pid>`: unique per process on one machine, readable in logs."""
    host = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:40] or "node"
    return f"{host}-{os.getpid()}"


class LocalBus:
    """The bus of a single node: nothing to broadcast to; calls run in this process."""

    shared = False

    def __init__(self, node_id: str | None = None) -> None:
        self.node_id = node_id or default_node_id()
        self._servers: dict[str, Server] = {}
        self._holds: collections.Counter[str] = collections.Counter()

    def subscribe(self, topic: str, handler: Handler) -> None:
        return None  # no other node ever broadcasts

    async def broadcast(self, topic: str, data: Data) -> None:
        return None

    def serve(self, method: str, server: Server) -> None:
        self._servers[method] = server

    async def call(self, target: str, method: str, data: Data, *, timeout_s: float = 10.0) -> Data:
        if target not in (LEADER, self.node_id):
            raise RemoteError(f"no node {target!r} (this gateway runs alone)")
        server = self._servers.get(method)
        if server is None:
            raise RemoteError(f"nothing answers {method!r}")
        return await server(data)

    async def lead(self, leading: bool) -> None:
        return None

    async def hold(self, key: str, delta: int) -> None:
        self._holds[key] += delta
        if self._holds[key] <= 0:
            del self._holds[key]

    async def held(self, key: str) -> int:
        return self._holds.get(key, 0)

    async def held_elsewhere(self, keys: list[str]) -> bool:
        return False  # there is no other node

    def on_reconnect(self, hook: Callable[[], None]) -> None:
        return None

    async def close(self) -> None:
        return None


__all__ = [
    "ERRORS",
    "LEADER",
    "Bus",
    "Data",
    "LocalBus",
    "RemoteError",
    "default_node_id",
    "error_payload",
    "raise_remote",
]
