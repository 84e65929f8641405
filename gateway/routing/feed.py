"""How committed console events reach the consoles connected to every node.

`LocalFeed` (one node): the router hands its committed events straight to the
hub. `SharedFeed` (several nodes): the bus carries only a hint that events were
committed; each node reads the events after the last one it forwarded from the
store, in order, and hands them to its own hub. Console events commit in
sequence order (store/pg_routing.py), so "everything after N" never skips one,
and a lost hint only delays events until the next hint or the periodic read.
Typing indicators (never stored) and "close this session's consoles" are
broadcast as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any, Protocol

from gateway.bus import Bus, Data
from gateway.routing.hub import ConsoleHub
from gateway.routing.models import ConsoleEvent
from gateway.routing.store import RoutingStore

log = logging.getLogger(__name__)

PAGE = 500


class ConsoleFeed(Protocol):
    hub: ConsoleHub

    def committed(self, events: Iterable[ConsoleEvent]) -> None:
        """Events this node just committed."""
        ...

    def transient(self, rep_id: int, frame: dict[str, Any]) -> None:
        """A frame for the rep's consoles that is not stored (typing)."""
        ...

    def end_session(self, session_id: str) -> None:
        """Close the consoles of a session that logged out."""
        ...


class LocalFeed:
    def __init__(self, hub: ConsoleHub) -> None:
        self.hub = hub

    def committed(self, events: Iterable[ConsoleEvent]) -> None:
        self.hub.push(events)

    def transient(self, rep_id: int, frame: dict[str, Any]) -> None:
        self.hub.push_transient(rep_id, frame)

    def end_session(self, session_id: str) -> None:
        self.hub.end_session(session_id)


class SharedFeed:
    """See the module docstring."""

    def __init__(
        self, hub: ConsoleHub, bus: Bus, routing: RoutingStore, *, poll_s: float = 1.0
    ) -> None:
        self.hub = hub
        self.bus = bus
        self.routing = routing
        self.poll_s = poll_s
        self.last = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.last = await self.routing.last_console_seq()
        self.bus.subscribe("console", self._on_hint)
        self.bus.subscribe("console.transient", self._on_transient)
        self.bus.subscribe("console.end", self._on_end)
        self.bus.on_reconnect(self._wake.set)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def committed(self, events: Iterable[ConsoleEvent]) -> None:
        seqs = [e.seq for e in events]
        if seqs:
            self._wake.set()
            self._spawn(self.bus.broadcast("console", {"seq": max(seqs)}))

    def transient(self, rep_id: int, frame: dict[str, Any]) -> None:
        self.hub.push_transient(rep_id, frame)
        self._spawn(self.bus.broadcast("console.transient", {"rep_id": rep_id, "frame": frame}))

    def end_session(self, session_id: str) -> None:
        self.hub.end_session(session_id)
        self._spawn(self.bus.broadcast("console.end", {"session_id": session_id}))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_hint(self, data: Data) -> None:
        if int(data.get("seq", 0)) > self.last:
            self._wake.set()

    async def _on_transient(self, data: Data) -> None:
        self.hub.push_transient(int(data["rep_id"]), dict(data["frame"]))

    async def _on_end(self, data: Data) -> None:
        self.hub.end_session(str(data["session_id"]))

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_s):
                    await self._wake.wait()
            self._wake.clear()
            try:
                while True:
                    page = await self.routing.console_since(self.last, PAGE)
                    if page:
                        self.hub.push(page)
                        self.last = page[-1].seq
                    if len(page) < PAGE:
                        break
            except Exception as exc:  # the store is unwell: consoles catch up on the next read
                log.warning("console feed: cannot read new events: %s", exc)


__all__ = ["ConsoleFeed", "LocalFeed", "SharedFeed"]
