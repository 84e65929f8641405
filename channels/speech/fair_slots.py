"""Worker slots shared fairly between calls: per-owner queues served round-robin.

The speech recogniser has a few worker threads shared by every call. A plain
semaphore hands a freed worker to whoever asked first, so a call that queues
many jobs (early transcriptions restarted at each pause, abandoned decodes
still running) holds the workers while another call's utterance waits behind
all of them. Here each owner (a call) has its own queue, and a freed slot goes
to the waiting owner whose turn it is: first those with no job running, and
among them the one whose last job ended longest ago (or that arrived first);
only when every waiting owner already has a job running does the slot go to
one of them anyway, in the same turn (no worker idles while work waits). So a
caller who has just finished speaking waits for at most one job ahead of
theirs, however busy the other calls are: the first slot to free up is theirs.

A slot is held until `release` (the recogniser releases it when the worker
thread is really done, even after a timeout). Owners are any hashable (the
call's SID); `None` makes a job its own owner (plain first come, first served).
Runs on one event loop; not thread-safe (release from a thread through
`loop.call_soon_threadsafe`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable


class FairSlots:
    """`slots` slots shared between owners; see the module docstring."""

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("slots must be at least 1")
        self._free = slots
        self._queues: dict[Hashable, deque[asyncio.Future[None]]] = {}  # owners waiting
        self._running: dict[Hashable, int] = {}
        # An owner's place in the turn: when its last job ended, or when it came with
        # nothing running or waiting. Forgotten once it has neither: coming back later
        # it would get a later tick anyway.
        self._turn: dict[Hashable, int] = {}
        self._tick = 0

    @property
    def waiting(self) -> int:
        """Jobs waiting for a slot."""
        return sum(1 for q in self._queues.values() for f in q if not f.done())

    def running(self, owner: Hashable) -> int:
        """Slots `owner` holds now."""
        return self._running.get(owner, 0)

    async def acquire(self, owner: Hashable | None) -> Hashable:
        """Wait for a slot for `owner`; returns the key to `release` it with. Cancelled
        while waiting, the job leaves its queue and holds nothing."""
        key: Hashable = object() if owner is None else owner
        granted = asyncio.get_running_loop().create_future()
        if key not in self._turn:
            self._turn[key] = self._next_tick()
        self._queues.setdefault(key, deque()).append(granted)
        self._dispatch()
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self.release(key)  # granted just as it was cancelled: hand it on
            else:
                self._forget(key, granted)
            raise
        return key

    def release(self, key: Hashable) -> None:
        """Give back a slot `acquire` returned `key` for."""
        left = self._running.get(key, 0) - 1
        if left < 0:
            raise RuntimeError("release without acquire")
        if left:
            self._running[key] = left
        else:
            del self._running[key]
        self._turn[key] = self._next_tick()  # its turn is over: behind those waiting
        self._drop_idle(key)
        self._free += 1
        self._dispatch()

    def _dispatch(self) -> None:
        while self._free and self._queues:
            owner = self._next_owner()
            queue = self._queues[owner]
            granted = queue.popleft()
            if not queue:
                del self._queues[owner]
            if granted.done():  # cancelled while it waited
                self._drop_idle(owner)
                continue
            self._free -= 1
            self._running[owner] = self._running.get(owner, 0) + 1
            granted.set_result(None)

    def _next_owner(self) -> Hashable:
        """The waiting owner whose turn it is: nothing running first, then by turn."""
        return min(self._queues, key=lambda o: (o in self._running, self._turn[o]))

    def _next_tick(self) -> int:
        self._tick += 1
        return self._tick

    def _drop_idle(self, owner: Hashable) -> None:
        if owner not in self._running and owner not in self._queues:
            self._turn.pop(owner, None)

    def _forget(self, key: Hashable, granted: asyncio.Future[None]) -> None:
        queue = self._queues.get(key)
        if queue is not None and granted in queue:
            queue.remove(granted)
            if not queue:
                del self._queues[key]
        self._drop_idle(key)


__all__ = ["FairSlots"]
