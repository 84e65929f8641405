"""Live chat sockets and the outbound half of the web chat channel.

Each socket is a `Session` with its own bounded outbox and writer task, so a
slow or dead browser never holds up a publish to anyone else: frames are
queued without waiting, and a socket whose outbox overflows or whose send
times out is dropped (its client reconnects and resumes by sequence number).

A session is registered under the identity key it chats as (`webchat:<visitor
id>` or `account:<user id>`) before its history is read; live messages that
arrive meanwhile are held back and released after the history, minus those the
history already contained, so the switch-over neither loses nor repeats one.
Live messages may arrive out of `seq` order (several nodes write for one
customer): each is sent once, whatever its place (clients order by `seq`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from aiohttp import WSCloseCode, web

from channels.webchat import codec
from gateway.models import (
    Action,
    ChannelKind,
    Conversation,
    Customer,
    Direction,
    Message,
    Typing,
)

log = logging.getLogger(__name__)

OUTBOX_MAX = 512
SENT_MAX = 2048  # seqs above the history a socket remembers having sent
SEND_TIMEOUT_S = 10.0


class Session:
    """One live socket: an ordered outbox, drained by a writer task."""

    def __init__(
        self, ws: web.WebSocketResponse, *, outbox_max: int = OUTBOX_MAX,
        send_timeout_s: float = SEND_TIMEOUT_S,
    ) -> None:  # fmt: skip
        self.ws = ws
        self.key: str | None = None  # hub key once registered
        self.last_seq = 0  # newest message seq sent to this socket
        # Every seq up to `_floor` was sent (the history); above it, those in `_sent`.
        # Live messages from several writers (nodes) arrive out of order: a lower seq
        # not sent yet still goes out, and none goes out twice.
        self._floor = 0
        self._sent: set[int] = set()
        self._live = False
        self._held: list[Message] = []
        self._outbox: asyncio.Queue[str | None] = asyncio.Queue(maxsize=outbox_max)
        self._send_timeout_s = send_timeout_s
        self._closed = False
        self._writer = asyncio.create_task(self._write_loop())

    @property
    def closed(self) -> bool:
        return self._closed or self.ws.closed

    def send(self, frame: str) -> None:
        """Queue a frame; never waits. A full outbox means the client stopped reading."""
        if self._closed:
            return
        try:
            self._outbox.put_nowait(frame)
        except asyncio.QueueFull:
            log.warning("web chat socket too slow (%d frames queued); dropping it",
                        self._outbox.qsize())  # fmt: skip
            self._abandon()

    def deliver(self, message: Message) -> None:
        """A stored message for this socket: held until history is sent, never repeated."""
        if not self._live:
            self._held.append(message)
            return
        seq = message.seq
        if seq <= self._floor or seq in self._sent:
            return
        self._sent.add(seq)
        self.last_seq = max(self.last_seq, seq)
        if len(self._sent) > SENT_MAX:
            # Bounded memory: the oldest half counts as sent from now on (a message
            # that far behind the others would be lost to this socket only).
            ordered = sorted(self._sent)
            half = len(ordered) // 2
            self._floor = ordered[half - 1]
            self._sent = set(ordered[half:])
        self.send(codec.message_frame(message))

    def go_live(self, last_seq: int) -> None:
        """History up to `last_seq` is queued: release held messages not in it."""
        self._floor = max(self._floor, last_seq)
        self.last_seq = max(self.last_seq, last_seq)
        self._live = True
        held, self._held = sorted(self._held, key=lambda m: m.seq), []
        for message in held:
            self.deliver(message)

    def _abandon(self) -> None:
        # Drop what is queued and stop the writer; the writer closes the socket.
        self._closed = True
        while not self._outbox.empty():
            self._outbox.get_nowait()
        self._outbox.put_nowait(None)

    async def _write_loop(self) -> None:
        while True:
            frame = await self._outbox.get()
            if frame is None:
                break
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel.
                async with asyncio.timeout(self._send_timeout_s):
                    await self.ws.send_str(frame)
            except (TimeoutError, ConnectionError, RuntimeError) as exc:
                # RuntimeError: aiohttp refuses sends on a closing socket.
                log.info("web chat send failed (%s); dropping the socket", type(exc).__name__)
                self._closed = True
                break
        if not self.ws.closed:
            with contextlib.suppress(Exception):
                await self.ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"send failed")

    async def stop(self) -> None:
        """Flush what is queued (within the send timeout), then end the writer."""
        if not self._closed:
            if self.ws.closed:
                self._abandon()  # nothing queued can reach a closed socket
            else:
                self._closed = True
                try:
                    self._outbox.put_nowait(None)
                except asyncio.QueueFull:
                    self._abandon()
        if self._writer.done():
            return
        try:
            async with asyncio.timeout(self._send_timeout_s):
                await asyncio.shield(self._writer)
        except TimeoutError:
            self._writer.cancel()
        except asyncio.CancelledError:
            self._writer.cancel()
            raise


KeyHolder = Callable[[str, int], Awaitable[None]]
"""Told +1 / -1 as a socket of an identity key opens and closes here (several nodes:
the bus records which node holds which keys, gateway/cluster.py)."""


class Hub:
    """Live sessions by identity key; a customer's sessions are those of any of its keys."""

    def __init__(self) -> None:
        self._by_key: dict[str, set[Session]] = {}
        self.holder: KeyHolder | None = None
        self._releases: set[asyncio.Task[None]] = set()

    async def add(self, key: str, session: Session) -> None:
        """Register `session`; returns once the other nodes can know it (before its
        history is read, so no delivery from another node falls in between)."""
        session.key = key
        self._by_key.setdefault(key, set()).add(session)
        if self.holder is not None:
            # Shielded: once counted, the count stands even if this socket's task is
            # cancelled meanwhile, so its `remove` always has something to undo.
            await asyncio.shield(self.holder(key, +1))

    def remove(self, session: Session) -> None:
        """Synchronous (a closing socket's task may be cancelled); the holder is told
        in the background."""
        if session.key is None:
            return
        peers = self._by_key.get(session.key)
        if peers is not None and session in peers:
            peers.discard(session)
            if not peers:
                del self._by_key[session.key]
            if self.holder is not None:
                task = asyncio.ensure_future(self.holder(session.key, -1))
                self._releases.add(task)
                task.add_done_callback(self._releases.discard)

    def sessions_for(self, customer: Customer) -> list[Session]:
        found: list[Session] = []
        for identity in customer.identities:
            found.extend(s for s in self._by_key.get(identity.key, ()) if not s.closed)
        return found

    def all_sessions(self) -> list[Session]:
        return [s for peers in self._by_key.values() for s in peers]

    def __len__(self) -> int:
        return sum(len(peers) for peers in self._by_key.values())


class WebchatChannel:
    """The `Channel` the dispatcher delivers web chat messages and signals through."""

    kind = ChannelKind.WEBCHAT

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def publish(
        self, customer: Customer, conversation: Conversation, message: Message
    ) -> None:
        """Queue `message` to every live socket of the customer (never blocks)."""
        if message.direction is Direction.INTERNAL:
            return  # rep notes are never shown to the customer
        for session in self.hub.sessions_for(customer):
            session.deliver(message)

    async def signal(self, customer: Customer, conversation: Conversation, action: Action) -> None:
        """Typing indicators; other actions mean nothing in a browser. A transfer says
        nothing of its own: the queue's one notice (gateway/routing/intake.py, stored,
        the same on every text channel) tells the visitor when someone will be there."""
        if not isinstance(action, Typing):
            return
        frame = codec.typing_frame(action.active)
        for session in self.hub.sessions_for(customer):
            session.send(frame)

    async def request_rating(self, customer: Customer, url: str, text: str) -> None:
        """Show the rating control (a closed conversation) in the customer's open tabs."""
        frame = codec.rating_frame(url, text)
        for session in self.hub.sessions_for(customer):
            session.send(frame)

    async def close_all(self) -> None:
        """Shutdown: tell every browser we are going away (it reconnects to the next process)."""
        sessions = self.hub.all_sessions()
        await asyncio.gather(
            *(s.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
              for s in sessions),
            return_exceptions=True,
        )  # fmt: skip


__all__ = ["Hub", "Session", "WebchatChannel"]
