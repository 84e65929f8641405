"""`PhoneChannel`: the outbound half of the phone channel (gateway.protocols.Channel).

The dispatcher hands it every stored message and action for conversations
whose current channel is the phone. Agent (and rep) messages are spoken on
the customer's live call; the caller's own messages, echoed back by the
dispatcher, are not. `Hangup` ends the call once the goodbye has been heard,
`Transfer` plays the hold prompt (then, with a `Handover` set, such as
`transfer.WarmTransfers`, the call is handed to a rep), `Typing` means nothing
on a call. A message
for a customer with no live call stays stored and is simply not spoken.
With a streaming agent, `open_live` lets the call speak an answer sentence by
sentence while it is written (channels/phone/call/live.py).

It is also the registry of live calls (by customer and by call SID) and
remembers the last few finished ones, for `GET /twilio/calls/{sid}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from channels.phone.call.phone_call import PhoneCall
from channels.phone.services import CallInfo
from channels.phone.transfer.routing import CallRouting
from gateway.errors import DeliveryError
from gateway.models import (
    Action,
    ChannelKind,
    Conversation,
    Customer,
    Direction,
    Hangup,
    Message,
    Transfer,
)
from gateway.protocols import LiveReply

log = logging.getLogger("gateway.phone.channel")

RECENT_CALLS = 200

TransferListener = Callable[[int, str, dict[str, Any]], Awaitable[None]]
"""Told of each warm-transfer step once it is stored: (conversation id, event kind such
as `transfer.ringing`, its data). The rep console's routing registers one."""


class Handover(Protocol):
    """What takes a call on once the agent has transferred it (a warm transfer)."""

    async def hand_over(
        self, call: PhoneCall, conversation: Conversation, prompt: asyncio.Task[Any] | None
    ) -> None:
        """Start handing `call` over, once `prompt` (the hold prompt) has been heard.
        Returns before that: the dispatcher queues the conversation once it has."""
        ...


class PhoneChannel:
    """Speaks to callers; see the module docstring."""

    kind = ChannelKind.PHONE

    def __init__(self) -> None:
        self._by_customer: dict[int, list[PhoneCall]] = {}
        self._by_sid: dict[str, PhoneCall] = {}
        self._recent: OrderedDict[str, CallInfo] = OrderedDict()
        self._endings: set[asyncio.Task[None]] = set()
        self._empty = asyncio.Event()  # no live call and no call still ending
        self._empty.set()
        self.handover: Handover | None = None  # None: a transfer only plays the hold prompt
        self.transfer_listeners: list[TransferListener] = []
        self.routing: CallRouting | None = None  # routing's side of warm transfers

    def attach_routing(self, routing: CallRouting | None) -> None:
        """Routing (gateway/routing/calls.py) offers transferred calls to reps' phones;
        None detaches it. Called by routing's start-up, after the channel's."""
        self.routing = routing
        attach = getattr(self.handover, "attach_routing", None)
        if attach is not None:
            attach(routing)

    # ------------------------------------------------------------- registry

    def add(self, call: PhoneCall) -> None:
        self._empty.clear()
        self._by_sid[call.call_sid] = call
        if call.customer_id is not None:
            self._by_customer.setdefault(call.customer_id, []).append(call)

    def remove(self, call: PhoneCall) -> None:
        if self._by_sid.get(call.call_sid) is call:
            del self._by_sid[call.call_sid]
        calls = self._by_customer.get(call.customer_id or 0, [])
        if call in calls:
            calls.remove(call)
            if not calls:
                del self._by_customer[call.customer_id or 0]
        self._recent[call.call_sid] = call.info
        while len(self._recent) > RECENT_CALLS:
            self._recent.popitem(last=False)
        self._check_empty()

    def _check_empty(self, *_: object) -> None:
        if not self._by_sid and not self._endings:
            self._empty.set()

    def live(self, call_sid: str) -> PhoneCall | None:
        return self._by_sid.get(call_sid)

    def info(self, call_sid: str) -> CallInfo | None:
        """A live or recently ended call."""
        call = self._by_sid.get(call_sid)
        return call.info if call is not None else self._recent.get(call_sid)

    def _call_of(self, customer: Customer) -> PhoneCall | None:
        calls = self._by_customer.get(customer.id)
        return calls[-1] if calls else None  # the newest, if they somehow call twice

    @property
    def live_calls(self) -> int:
        return len(self._by_sid)

    def track(self, ending: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run a call's ending to completion even if the request handler is cancelled."""
        task = asyncio.ensure_future(ending)
        self._endings.add(task)
        self._empty.clear()
        task.add_done_callback(self._endings.discard)
        task.add_done_callback(self._check_empty)
        return task

    async def close_all(self, timeout_s: float = 30.0) -> None:
        """Shutdown: end every live call (each closes its stream) and wait for them."""
        for call in list(self._by_sid.values()):
            call.terminate("the gateway is shutting down")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._empty.wait()

    # -------------------------------------------------------------- Channel

    async def publish(
        self, customer: Customer, conversation: Conversation, message: Message
    ) -> None:
        if message.direction is not Direction.OUTBOUND:
            return  # the caller's own words, or an internal note
        call = self._call_of(customer)
        if call is None:
            # Said only on a live call: after the call (or a crash, which ends the
            # stream with the process) there is no one to say it to.
            log.info("no live call for customer %s: message %s not spoken", customer.id, message.id)
            raise DeliveryError("no_call", f"no live call for customer {customer.id}")
        call.speak(message)

    def open_live(
        self, customer: Customer, conversation: Conversation, message: Message
    ) -> LiveReply | None:
        """The dispatcher's `LiveOpener` (gateway/streaming.py): the customer's live call
        speaks the answer to `message` sentence by sentence as the agent writes it."""
        call = self._call_of(customer)
        return None if call is None else call.live_answer(message)

    async def signal(self, customer: Customer, conversation: Conversation, action: Action) -> None:
        call = self._call_of(customer)
        if call is None:
            return
        if isinstance(action, Hangup):
            call.request_hangup(action.reason)
        elif isinstance(action, Transfer):
            prompt = call.on_transfer()
            if self.handover is not None and prompt is not None:
                await self.handover.hand_over(call, conversation, prompt)


__all__ = ["Handover", "PhoneChannel"]
