"""Narrow protocols at the seams between channels, the gateway, the store and
the agent core. Each has one real implementation here and room for more
(PostgreSQL for `Store`, an HTTP API for `Backend`, an LLM for `Brain`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from pydantic import Field

from gateway.models import (
    Action,
    AuthorKind,
    ChannelKind,
    Conversation,
    ConversationState,
    Customer,
    Direction,
    Event,
    Frozen,
    HandoffBrief,
    Identity,
    InboundMessage,
    Message,
)

# ------------------------------------------------------------------- store


class Ingested(Frozen):
    """What storing one inbound message produced."""

    customer: Customer
    conversation: Conversation
    message: Message
    duplicate: bool = False  # the (channel, external id) was seen before
    handled: bool = False  # (duplicates) the original was already answered
    created_customer: bool = False


class OutboundDraft(Frozen):
    """A message the gateway is about to send, before the store numbers it."""

    text: str
    author: AuthorKind = AuthorKind.AGENT
    channel: ChannelKind
    direction: Direction = Direction.OUTBOUND


class EventDraft(Frozen):
    kind: str
    data: dict[str, Any] = Field(default_factory=dict)


class TurnRecord(Frozen):
    """Everything one agent turn changes, written in one transaction."""

    conversation_id: int
    expected_version: int
    handled_message_id: int | None = None
    outbound: tuple[OutboundDraft, ...] = ()
    events: tuple[EventDraft, ...] = ()
    agent_state: dict[str, Any] | None = None
    state: ConversationState | None = None
    queue: str | None = None
    brief: HandoffBrief | None = None


class TurnStored(Frozen):
    conversation: Conversation
    messages: tuple[Message, ...]


class Store(Protocol):
    """Durable state. Every write is committed before its coroutine returns."""

    async def ingest(self, message: InboundMessage) -> Ingested: ...

    async def record_turn(self, turn: TurnRecord) -> TurnStored: ...

    async def get_customer(self, customer_id: int) -> Customer: ...

    async def find_customer(self, identity: Identity) -> Customer | None:
        """The customer an identity belongs to, or None before their first message."""
        ...

    async def get_conversation(self, conversation_id: int) -> Conversation: ...

    async def history(
        self, customer_id: int, *, after_seq: int | None = None, limit: int = 100
    ) -> list[Message]:
        """The customer's messages on every channel, oldest first. With `after_seq`,
        those after it; without, the latest `limit`."""
        ...

    async def conversation_messages(self, conversation_id: int) -> list[Message]: ...

    async def events(self, conversation_id: int) -> list[Event]: ...

    async def count_events(self, customer_id: int, kind: str, since: datetime) -> int: ...

    async def unhandled_messages(self) -> list[Message]:
        """Inbound messages stored but never answered (a crash between the two)."""
        ...

    async def close(self) -> None: ...


# ------------------------------------------------------------------- agent


class TurnContext(Frozen):
    """What the agent core sees for one inbound message."""

    customer: Customer
    conversation: Conversation
    message: Message
    history: tuple[Message, ...] = ()  # recent messages from every channel, oldest first


class Decision(Frozen):
    """The agent's answer to one turn."""

    actions: tuple[Action, ...]
    events: tuple[EventDraft, ...] = ()
    agent_state: dict[str, Any] = Field(default_factory=dict)
    intent: str = "unknown"
    confidence: float = Field(ge=0.0, le=1.0)


class Brain(Protocol):
    """The agent core: decides what to say and do for one customer turn."""

    async def respond(self, turn: TurnContext) -> Decision: ...


class UsageLedger(Protocol):
    """What the agent's guardrails need from the store: counts of past actions."""

    async def count_events(self, customer_id: int, kind: str, since: datetime) -> int: ...


# ---------------------------------------------------------------- channels


class Channel(Protocol):
    """The outbound half of a channel adapter. The inbound half calls the dispatcher."""

    kind: ChannelKind

    async def publish(
        self, customer: Customer, conversation: Conversation, message: Message
    ) -> None:
        """Deliver a stored message (the customer's own, echoed to their other
        sessions, or one from the agent or a rep)."""
        ...

    async def signal(self, customer: Customer, conversation: Conversation, action: Action) -> None:
        """Non-message actions: typing indicators, hang-ups, transfers."""
        ...


ChannelRegistry = dict[ChannelKind, Channel]

__all__ = [
    "Brain",
    "Channel",
    "ChannelRegistry",
    "Decision",
    "EventDraft",
    "Ingested",
    "OutboundDraft",
    "Store",
    "TurnContext",
    "TurnRecord",
    "TurnStored",
    "UsageLedger",
]
