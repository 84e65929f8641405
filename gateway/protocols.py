"""Narrow protocols at the seams between channels, the gateway, the store and
the agent core. Each has one real implementation here and room for more
(PostgreSQL for `Store`, an HTTP API for `Backend`, an LLM for `Brain`)."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import Field

from gateway.models import (
    Action,
    AuthorKind,
    ChannelKind,
    Conversation,
    ConversationState,
    Customer,
    DeliveryStatus,
    Direction,
    Event,
    Frozen,
    HandoffBrief,
    Identity,
    InboundMessage,
    Message,
    VoiceTiming,
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


class OpenedSession(Frozen):
    """A customer and their open conversation, found or started without a message
    (a phone call, where the agent speaks first)."""

    customer: Customer
    conversation: Conversation
    created_customer: bool = False
    created_conversation: bool = False


class OutboundDraft(Frozen):
    """A message the gateway is about to send, before the store numbers it."""

    text: str
    author: AuthorKind = AuthorKind.AGENT
    channel: ChannelKind
    direction: Direction = Direction.OUTBOUND
    author_name: str | None = Field(default=None, max_length=100)  # a rep's first name


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


class Pending(Frozen):
    """A reply the outbox claimed to send: the message and how often it was tried."""

    message: Message
    attempts: int


class OutboxStore(Protocol):
    """The outbox's side of the store (gateway/outbox.py). A reply enters it when its
    turn is stored (status `queued`, claimed by the storing node for
    `rules.OUTBOX_LEASE_MS`) and leaves it with `set_delivery` to sent or beyond."""

    async def claim_outbox(self, limit: int) -> list[Pending]:
        """Claim up to `limit` replies that are due and not claimed by a live sender
        (several nodes: each row goes to one of them)."""
        ...

    async def retry_delivery(
        self, message_id: int, delay_ms: int, error_code: str, *, not_taken: bool = False
    ) -> None:
        """The attempt failed and may succeed later: one more attempt counted, due
        again in `delay_ms`, unclaimed. Back to `queued` when the provider surely did
        not take it (`not_taken`); else the status stays (`sending` tells the next
        attempt that this one may have reached the provider)."""
        ...

    async def release_outbox(self) -> int:
        """Drop every claim (a single node starting: no other sender holds any);
        returns how many replies wait."""
        ...


class LinkResult(enum.StrEnum):
    """What `Store.link_identity` did."""

    LINKED = "linked"  # the identity is now the customer's (new, or moved from an empty record)
    ALREADY = "already"  # it was already theirs (its verification may have been raised)
    MERGED = "merged"  # another customer record held it: that record was merged into this one
    OTHER_ACCOUNT = "other_account"  # the customer is tied to a different backend account


class Linked(Frozen):
    result: LinkResult
    customer: Customer  # the customer as it is after the call


class Store(OutboxStore, Protocol):
    """Durable state. Every write is committed before its coroutine returns."""

    async def ingest(self, message: InboundMessage) -> Ingested: ...

    async def record_turn(self, turn: TurnRecord) -> TurnStored: ...

    async def open_session(
        self,
        identity: Identity,
        channel: ChannelKind,
        *,
        display_name: str | None = None,
        account_ref: str | None = None,
    ) -> OpenedSession:
        """The customer `identity` belongs to (created, or linked by `account_ref`, as
        `ingest` would) and their open conversation (or a new one), moved to `channel`;
        no message is stored."""
        ...

    async def amend_message(
        self,
        message_id: int,
        *,
        text: str | None = None,
        timing: VoiceTiming | None = None,
        reason: str = "",
    ) -> Message:
        """Correct a stored message after delivery: `text` (what a caller actually heard of
        a spoken message; the original is kept in a `message.cut` event with `reason`)
        and/or its voice `timing`. NotFoundError for an unknown id."""
        ...

    async def set_delivery(
        self,
        message_id: int,
        status: DeliveryStatus,
        *,
        external_id: str | None = None,
        error_code: str | None = None,
    ) -> Message:
        """Record a provider's delivery state (and, first time, its id) on an outbound
        message. Never steps back from a later state; a failure is also an event."""
        ...

    async def update_delivery(
        self,
        channel: ChannelKind,
        external_id: str,
        status: DeliveryStatus,
        *,
        error_code: str | None = None,
    ) -> Message | None:
        """`set_delivery` by the provider's id (a status callback); None if unknown."""
        ...

    async def find_message(self, channel: ChannelKind, external_id: str) -> Message | None: ...

    async def set_opt_out(self, identity: Identity, opted_out: bool) -> bool:
        """Mark an identity opted out (STOP) or back in (START); False if unknown."""
        ...

    async def is_opted_out(self, identity: Identity) -> bool: ...

    async def get_customer(self, customer_id: int) -> Customer: ...

    async def link_identity(
        self,
        customer_id: int,
        identity: Identity,
        *,
        account_ref: str | None = None,
    ) -> Linked:
        """Make `identity` (with its `verified`) one of the customer's, after proof of
        control (a one-time code). Also ties the customer to `account_ref` when they
        have none. When another customer record with messages holds the identity,
        that record is merged into this customer (`MERGED`; its messages renumbered
        after this customer's, as in auto-linking). Refuses without changing anything
        (`OTHER_ACCOUNT`) when the two are tied to different business accounts."""
        ...

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
    """The agent core: decides what to say and do for one customer turn.

    `history_window` is how many of the customer's recent messages (from every
    channel) the gateway reads into `TurnContext.history`; 0 skips the read for
    a brain that keeps what it needs in `agent_state`.
    """

    history_window: int

    async def respond(self, turn: TurnContext) -> Decision: ...


class StreamingBrain(Brain, Protocol):
    """A `Brain` that can also stream its answer: each sentence as soon as it is
    complete, then the `Decision` (whose reply holds the whole text). A channel
    that speaks can start on the first sentence while the rest is written."""

    def respond_stream(self, turn: TurnContext) -> AsyncIterator[str | Decision]: ...


class LiveReply(Protocol):
    """A channel's live view of one answer while a `StreamingBrain` writes it (a call
    speaks each sentence at once). The dispatcher feeds it every finished sentence,
    then, once the turn is stored, hands it the stored reply (whose text starts with
    those sentences) with `finish`: it says whatever of the reply it has not said yet
    and ties what was said to the stored message. `finish(None)`: the turn stored no
    reply (or failed); stop after what was said."""

    def sentence(self, text: str) -> None: ...

    def finish(self, message: Message | None) -> None: ...


class UsageLedger(Protocol):
    """What the agent's guardrails need from the store: counts of past actions."""

    async def count_events(self, customer_id: int, kind: str, since: datetime) -> int: ...


class IdentityLinks(Protocol):
    """What the agent's identity linking needs from the store."""

    async def find_customer(self, identity: Identity) -> Customer | None: ...

    async def link_identity(
        self,
        customer_id: int,
        identity: Identity,
        *,
        account_ref: str | None = None,
    ) -> Linked: ...


class FreshTurn(Frozen):
    """What a turn starts from, read under its gate (`TurnGate.fresh`)."""

    customer: Customer
    conversation: Conversation
    history: tuple[Message, ...] | None = None  # the customer's latest messages, if asked


class TurnGate(Protocol):
    """Several nodes: one turn of a conversation at a time across all of them."""

    def hold(self, conversation_id: int) -> AbstractAsyncContextManager[None]:
        """Held while a turn of the conversation runs (waits for other nodes' turns)."""
        ...

    async def fresh(self, message: Message, history: int) -> FreshTurn | None:
        """Read now, in one step: None when the message was answered (by any node);
        else its customer and conversation as they are, and the customer's latest
        `history` messages (none read when 0)."""
        ...


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


class Notifier(Protocol):
    """A channel that can send a short notice to any identity of its kind, outside a
    conversation (a one-time code). The dispatcher routes `Notify` actions to it."""

    async def notify(self, to: Identity, text: str, *, subject: str) -> str:
        """Send `text` to `to`; returns the provider's id. ChannelError when not sent."""
        ...


__all__ = [
    "Brain",
    "Channel",
    "ChannelRegistry",
    "Decision",
    "EventDraft",
    "FreshTurn",
    "IdentityLinks",
    "Ingested",
    "LinkResult",
    "Linked",
    "LiveReply",
    "Notifier",
    "OpenedSession",
    "OutboundDraft",
    "OutboxStore",
    "Pending",
    "Speech",
    "Store",
    "StreamingBrain",
    "Synthesizer",
    "Transcriber",
    "Transcript",
    "TurnContext",
    "TurnGate",
    "TurnRecord",
    "TurnStored",
    "UsageLedger",
]


# ------------------------------------------------------------------ speech

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray


class Transcript(Frozen):
    """What the speech recogniser heard in one caller utterance."""

    text: str  # empty when nothing intelligible was said
    confidence: float = Field(ge=0.0, le=1.0)  # exp(mean token log-prob) x (1 - no-speech prob)
    duration_ms: int = Field(ge=0)  # length of the audio transcribed
    language: str = "en"
    no_speech_prob: float = Field(default=0.0, ge=0.0, le=1.0)
    tokens: int = Field(default=0, ge=0)  # tokens decoded (bounded by the audio length)
    processing_ms: int = Field(default=0, ge=0)  # wall time spent decoding


class Speech(Frozen):
    """Synthesized speech: mono 16-bit little-endian PCM at `sample_rate`."""

    text: str
    pcm: bytes = Field(repr=False)
    sample_rate: int = Field(gt=0)

    @property
    def duration_ms(self) -> int:
        return len(self.pcm) // 2 * 1000 // self.sample_rate


class Transcriber(Protocol):
    """Speech to text. Shared by every call; never blocks the event loop."""

    async def transcribe(
        self, pcm16k: NDArray[np.float32], *, owner: Hashable | None = None
    ) -> Transcript:
        """Transcribe one endpointed utterance: mono float32 samples in [-1, 1] at 16 kHz.
        `owner` (the call's SID) lets a recogniser shared by many calls serve them fairly."""
        ...

    async def close(self) -> None: ...


class Synthesizer(Protocol):
    """Text to speech. Never blocks the event loop."""

    @property
    def sample_rate(self) -> int:
        """Sample rate of the PCM `synthesize` returns."""
        ...

    async def synthesize(self, text: str) -> Speech:
        """Render `text` (a sentence or a short prompt) as mono int16 PCM."""
        ...

    async def close(self) -> None: ...


OUTBOUND_CALL_OUTCOMES = frozenset({"human", "machine", "no_answer", "busy", "failed"})


class OutboundCaller(Protocol):
    """Places the outbound call of proactive outreach (channels/phone/outbound/)."""

    outcome_hook: Callable[[str, str], Awaitable[None]] | None
    """Set by the composition root: awaited once per call as `(outreach_id, outcome)`,
    outcome one of `OUTBOUND_CALL_OUTCOMES`."""

    async def place(
        self, *, to: str, conversation_id: int, customer_id: int, outreach_id: str,
        opening: str, voicemail: str,
    ) -> str:  # fmt: skip
        """Call `to`: a person hears `opening` from the agent, then talks with it in
        conversation `conversation_id`; a machine gets `voicemail`. Returns the call SID
        once Twilio has taken the call; ChannelError otherwise."""
        ...
