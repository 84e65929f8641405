"""Live console updates: committed `ConsoleEvent`s pushed to connected consoles.

Events are written to the store first (so a console that reconnects replays
them by sequence number); the hub only forwards them to the consoles connected
now. Each console has a bounded queue: one that stops reading is cut off and
resumes from the store when it reconnects, rather than growing memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from gateway.routing.models import ConsoleEvent

QUEUE_MAX = 1000


class Subscriber:
    """One connected console of one rep."""

    def __init__(self, rep_id: int, queues: Iterable[str], session_id: str = "") -> None:
        self.rep_id = rep_id
        self.session_id = session_id
        self.queues = frozenset(queues)
        # Stored events, transient frames (typing: not worth a row), or None: close.
        self.events: asyncio.Queue[ConsoleEvent | dict[str, Any] | None] = asyncio.Queue(QUEUE_MAX)
        self.overflowed = False

    def sees(self, event: ConsoleEvent) -> bool:
        if event.rep_id is not None:
            return event.rep_id == self.rep_id
        return event.queue is None or event.queue in self.queues

    def offer(self, event: ConsoleEvent | dict[str, Any]) -> None:
        if self.overflowed:
            return
        try:
            self.events.put_nowait(event)
        except asyncio.QueueFull:
            # Never block the router on a slow console: it resumes from the store.
            self.overflowed = True
            while not self.events.empty():
                self.events.get_nowait()
            self.events.put_nowait(None)

    def offer_end(self) -> None:
        """Ask the console's socket to close (shutdown)."""
        try:
            self.events.put_nowait(None)
        except asyncio.QueueFull:
            self.overflowed = True


class ConsoleHub:
    """Who is connected, and forwarding of events to them."""

    def __init__(self) -> None:
        self._subs: dict[int, set[Subscriber]] = {}
        self._broadcast: set[Subscriber] = set()

    def subscribe(self, sub: Subscriber) -> None:
        self._subs.setdefault(sub.rep_id, set()).add(sub)
        self._broadcast.add(sub)

    def unsubscribe(self, sub: Subscriber) -> None:
        peers = self._subs.get(sub.rep_id)
        if peers is not None:
            peers.discard(sub)
            if not peers:
                del self._subs[sub.rep_id]
        self._broadcast.discard(sub)

    def push(self, events: Iterable[ConsoleEvent]) -> None:
        for event in events:
            targets = (
                self._subs.get(event.rep_id, ()) if event.rep_id is not None else self._broadcast
            )
            for sub in list(targets):
                if sub.sees(event):
                    sub.offer(event)

    def push_transient(self, rep_id: int, frame: dict[str, Any]) -> None:
        """A frame that is not stored nor replayed (typing indicators)."""
        for sub in list(self._subs.get(rep_id, ())):
            sub.offer(frame)

    def end_session(self, session_id: str) -> None:
        """Close the consoles of a session that logged out."""
        for sub in list(self._broadcast):
            if sub.session_id == session_id:
                sub.offer_end()

    def connected(self, rep_id: int) -> bool:
        return rep_id in self._subs

    def close_all(self) -> None:
        for sub in list(self._broadcast):
            sub.offer_end()
