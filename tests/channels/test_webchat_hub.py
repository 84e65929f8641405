"""Fan-out to live sockets: slow sockets are dropped, never waited for; the
history/live switch-over neither loses nor repeats a message."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import cast

from aiohttp import WSCloseCode, web

from channels.webchat.hub import Hub, Session, WebchatChannel
from gateway.models import (
    AuthorKind,
    ChannelKind,
    Conversation,
    ConversationState,
    Customer,
    Direction,
    HandoffBrief,
    Hangup,
    Identity,
    Message,
    Transfer,
    Typing,
)

NOW = datetime(2024, 5, 1, tzinfo=UTC)


class FakeSocket:
    """Stands in for the websocket under a session; `hang` makes sends block forever."""

    def __init__(self, hang: bool = False) -> None:
        self.hang = hang
        self.sent: list[dict[str, object]] = []
        self.closed = False
        self.close_code: int | None = None

    async def send_str(self, data: str) -> None:
        if self.hang:
            await asyncio.Event().wait()
        self.sent.append(json.loads(data))

    async def close(self, *, code: int = WSCloseCode.OK, message: bytes = b"") -> bool:
        self.closed, self.close_code = True, code
        return True


def session(sock: FakeSocket, *, outbox_max: int = 512, send_timeout_s: float = 10.0) -> Session:
    return Session(
        cast(web.WebSocketResponse, sock), outbox_max=outbox_max, send_timeout_s=send_timeout_s
    )


CUSTOMER = Customer(id=1, identities=(Identity.parse("webchat:visitor-aaaaaaaaaaaa"),),
                    created_at=NOW)  # fmt: skip
CONVERSATION = Conversation(
    id=1, customer_id=1, state=ConversationState.BOT, channel=ChannelKind.WEBCHAT,
    created_at=NOW, updated_at=NOW,
)  # fmt: skip


def msg(seq: int, direction: Direction = Direction.OUTBOUND) -> Message:
    return Message(id=seq, conversation_id=1, customer_id=1, seq=seq, direction=direction,
                   author=AuthorKind.AGENT, channel=ChannelKind.WEBCHAT, text=f"m{seq}",
                   created_at=NOW)  # fmt: skip


async def settle() -> None:
    """Let the writer tasks run."""
    await asyncio.sleep(0.01)


async def test_a_hung_socket_does_not_hold_up_the_others() -> None:
    hub = Hub()
    channel = WebchatChannel(hub)
    fast, hung = FakeSocket(), FakeSocket(hang=True)
    s_fast, s_hung = session(fast), session(hung, send_timeout_s=0.05)
    for s in (s_fast, s_hung):
        await hub.add("webchat:visitor-aaaaaaaaaaaa", s)
        s.go_live(0)
    started = time.perf_counter()
    for seq in (1, 2, 3):
        await channel.publish(CUSTOMER, CONVERSATION, msg(seq))
    assert time.perf_counter() - started < 0.05  # publishing never waits on a socket
    await settle()
    assert [f["seq"] for f in fast.sent] == [1, 2, 3]
    await asyncio.sleep(0.2)
    assert hung.closed and hung.close_code == WSCloseCode.TRY_AGAIN_LATER
    assert s_hung.closed and hub.sessions_for(CUSTOMER) == [s_fast]
    await s_fast.stop()
    await s_hung.stop()


async def test_a_socket_that_stops_reading_is_dropped_when_its_outbox_fills() -> None:
    sock = FakeSocket(hang=True)
    s = session(sock, outbox_max=3, send_timeout_s=30)
    s.go_live(0)
    for seq in range(1, 10):
        s.deliver(msg(seq))
    assert s.closed
    await settle()
    assert sock.closed
    await s.stop()


async def test_held_messages_are_released_after_history_without_repeats() -> None:
    sock = FakeSocket()
    s = session(sock)
    s.deliver(msg(3))  # arrives while history (up to 4) is being read
    s.deliver(msg(6))
    s.deliver(msg(5))
    s.send('{"type":"history"}')
    s.go_live(4)
    s.deliver(msg(6))  # already released
    s.deliver(msg(7))
    await settle()
    assert [f.get("seq") for f in sock.sent] == [None, 5, 6, 7]
    await s.stop()
    s.send('{"type":"late"}')  # after stop: ignored, no error
    assert len(sock.sent) == 4


async def test_out_of_order_live_messages_are_each_sent_once() -> None:
    # Two writers (nodes) for one customer: seq 9 may reach the socket after 10.
    sock = FakeSocket()
    s = session(sock)
    s.go_live(4)
    for seq in (6, 8, 5, 7, 8, 6, 4, 3, 9):
        s.deliver(msg(seq))
    await settle()
    assert [f.get("seq") for f in sock.sent] == [6, 8, 5, 7, 9]
    await s.stop()


async def test_many_out_of_order_messages_stay_bounded_and_unrepeated() -> None:
    sock = FakeSocket()
    s = session(sock, outbox_max=100_000)
    s.go_live(0)
    order = [seq for pair in zip(range(2, 6002, 2), range(1, 6001, 2), strict=True)
             for seq in pair]  # fmt: skip
    for seq in order + order[-50:]:
        s.deliver(msg(seq))
    await settle()
    sent = [f.get("seq") for f in sock.sent]
    assert sorted(sent) == list(range(1, 6001))
    await s.stop()


async def test_channel_signals_and_internal_messages() -> None:
    hub = Hub()
    channel = WebchatChannel(hub)
    sock = FakeSocket()
    s = session(sock)
    await hub.add("webchat:visitor-aaaaaaaaaaaa", s)
    s.go_live(0)
    await channel.publish(CUSTOMER, CONVERSATION, msg(1, Direction.INTERNAL))  # a rep note
    await channel.signal(CUSTOMER, CONVERSATION, Typing(active=True))
    brief = HandoffBrief(need="n", next_step="s", confidence=0.5)
    await channel.signal(CUSTOMER, CONVERSATION, Transfer(queue="general", brief=brief))
    await channel.signal(CUSTOMER, CONVERSATION, Hangup())
    other = Customer(id=2, identities=(Identity.parse("webchat:someone-else-bbbbbb"),),
                     created_at=NOW)  # fmt: skip
    await channel.publish(other, CONVERSATION, msg(2))
    await settle()
    # Only the typing indicator: a transfer says nothing of its own (the queue's one
    # stored notice tells the visitor), a note and another customer's message not at all.
    assert [f["type"] for f in sock.sent] == ["typing"]
    hub.remove(s)
    assert len(hub) == 0 and hub.sessions_for(CUSTOMER) == []
    await s.stop()
