"""Channels whose customers are connected to one node: web chat sockets, live calls.

On several nodes, the node that stores a reply (the agent's turn, a rep's
answer on the leader) is often not the one holding the customer's socket or
call. `FanoutChannel` wraps such a channel: it delivers through the local one
and broadcasts the same delivery, which every other node hands to its own
local channel (each delivers only to what it holds). SMS and email are not
wrapped: any node reaches Twilio or the relay, and must do so once.

Broadcast deliveries are the live path only: a chat that missed one (its node
was cut off from Redis, or it reconnected to another node meanwhile) resumes
from the store by sequence number, as the widget does anyway.

A channel that says which keys a customer's sockets are held under (`holders`,
web chat: the customer's identity keys) is broadcast to only when another live
node holds one of them (`Bus.held_elsewhere`, one Redis round trip): a customer
chatting on one node costs the others nothing. A socket is recorded on the bus
before its history is read, and the check runs after the message was stored, so
a socket opening on another node meanwhile gets the message one way or the other.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from pydantic import TypeAdapter

from gateway.bus import Bus, Data
from gateway.errors import DeliveryError
from gateway.models import Action, Conversation, Customer, Message
from gateway.protocols import Channel

log = logging.getLogger(__name__)

_ACTION: TypeAdapter[Any] = TypeAdapter(Action)


class FanoutChannel:
    """See the module docstring."""

    def __init__(
        self, local: Channel, bus: Bus, holders: Callable[[Customer], list[str]] | None = None
    ) -> None:
        self.local = local
        self.kind = local.kind
        self.bus = bus
        self.holders = holders
        self.topic = f"channel.{local.kind.value}"
        bus.subscribe(self.topic, self._remote)

    async def _elsewhere(self, customer: Customer) -> bool:
        """Whether another node may hold the customer's sockets (always, unknown)."""
        if self.holders is None:
            return True
        return await self.bus.held_elsewhere(self.holders(customer))

    async def publish(
        self, customer: Customer, conversation: Conversation, message: Message
    ) -> None:
        """Deliver here and broadcast; a local DeliveryError (no live call here) stands
        only when no other node may hold the customer."""
        try:
            await self.local.publish(customer, conversation, message)
        except DeliveryError:
            if not await self._elsewhere(customer):
                raise
        if await self._elsewhere(customer):
            data = {"op": "publish", **_parties(customer, conversation),
                    "message": message.model_dump(mode="json")}  # fmt: skip
            await self.bus.broadcast(self.topic, data)

    async def signal(self, customer: Customer, conversation: Conversation, action: Action) -> None:
        await self.local.signal(customer, conversation, action)
        if await self._elsewhere(customer):
            data = {"op": "signal", **_parties(customer, conversation),
                    "action": action.model_dump(mode="json")}  # fmt: skip
            await self.bus.broadcast(self.topic, data)

    async def request_rating(self, customer: Customer, url: str, text: str) -> None:
        """The web chat's rating control, shown wherever the customer's tabs are."""
        local = getattr(self.local, "request_rating", None)
        if local is not None:
            await local(customer, url, text)
        if await self._elsewhere(customer):
            data = {"op": "rating", "url": url, "text": text,
                    "customer": customer.model_dump(mode="json")}  # fmt: skip
            await self.bus.broadcast(self.topic, data)

    async def _remote(self, data: Data) -> None:
        customer = Customer.model_validate(data["customer"])
        op = data.get("op")
        if op == "rating":
            local = getattr(self.local, "request_rating", None)
            if local is not None:
                await local(customer, str(data["url"]), str(data["text"]))
            return
        conversation = Conversation.model_validate(data["conversation"])
        if op == "publish":
            message = Message.model_validate(data["message"])
            with contextlib.suppress(DeliveryError):  # not held here: another node's
                await self.local.publish(customer, conversation, message)
        elif op == "signal":
            await self.local.signal(customer, conversation, _ACTION.validate_python(data["action"]))
        else:
            log.warning("fan-out: unknown delivery %r dropped", op)


def _parties(customer: Customer, conversation: Conversation) -> Data:
    return {
        "customer": customer.model_dump(mode="json"),
        # The agent's private state is no channel's business (and may be large).
        "conversation": conversation.model_dump(mode="json", exclude={"agent_state"}),
    }


__all__ = ["FanoutChannel"]
