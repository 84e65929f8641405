"""One path for every channel: store the inbound message, ask the agent, store
and send the reply.

`Dispatcher.handle` returns as soon as the inbound message is committed, so a
channel can acknowledge it (a websocket ack, a webhook's 200) knowing nothing
will be lost; the answer is produced in the background. Turns of one
conversation run strictly in order; different conversations run concurrently.
Inbound messages stored but never answered (a crash in between) are answered
on the next start by `recover()`. With several nodes (a `TurnGate`), a
conversation's turns also run one at a time across nodes, and a message no
node has answered for a while is answered by another (`resume`, gateway/cluster.py).

A channel may answer some messages itself instead of the agent (SMS keywords:
STOP, START, HELP): it registers a `Responder` in `responders`. The responder
runs in the conversation's turn order, for new and recovered messages alike;
when it returns a `Decision`, that is stored and sent as the answer (whatever
the conversation's state, without touching the agent's state) and the agent is
not asked.

With a `StreamingBrain`, a channel that registers a `LiveOpener` in
`live_replies` (the phone) gets each sentence of the answer as it is written;
the turn is stored as before and the live view, not `publish`, says the rest
(gateway/streaming.py).

`Notify` actions (a one-time code for another phone number or address) go to
the channel registered in `notifiers` for the target's identity kind, before
the turn is stored (gateway/delivery.py). What a turn stores is built in
gateway/turn_record.py. Its replies are stored `queued` and sent through the
outbox (gateway/outbox.py), which retries them after a provider error or a crash.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from gateway.delivery import publish, send_notices, signal
from gateway.errors import GatewayError
from gateway.linking import AccountLinker
from gateway.metrics import Metrics
from gateway.models import (
    ChannelKind,
    Conversation,
    ConversationState,
    Customer,
    Identity,
    IdentityKind,
    InboundMessage,
    Message,
    Reply,
    Transfer,
    Typing,
)
from gateway.outbox import Outbox
from gateway.protocols import (
    Brain,
    ChannelRegistry,
    Decision,
    EventDraft,
    Ingested,
    Notifier,
    OutboundDraft,
    Store,
    TurnContext,
    TurnGate,
    TurnRecord,
)
from gateway.streaming import LiveOpener, Relay
from gateway.turn_record import fallback_decision, record_turn, turn_record

log = logging.getLogger(__name__)

HandoverHook = Callable[[Customer, Conversation], Awaitable[None]]
TypingHook = Callable[[Identity, bool], Awaitable[None]]
HeldHook = Callable[[Customer, Conversation, Message], Awaitable[None]]
"""Told of a customer message the agent stays silent on (a person holds, or will hold,
the conversation): routing forwards it to the rep's console."""
TurnHook = Callable[[Customer, Conversation, tuple[EventDraft, ...]], Awaitable[None]]
"""Told of each agent turn once stored and sent, with its events (routing announces an
`approval.pending` to the reps who may decide it)."""
Responder = Callable[[Customer, Conversation, Message], Awaitable[Decision | None]]
"""A channel's own answer to one of its inbound messages, or None to ask the agent."""


class _ConversationLane:
    """Serializes the turns of one conversation and remembers its newest state."""

    __slots__ = ("latest", "lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.latest: Conversation | None = None
        self.users = 0


class Dispatcher:
    """Routes normalized inbound events through the store and the agent core."""

    def __init__(
        self,
        store: Store,
        brain: Brain,
        channels: ChannelRegistry,
        metrics: Metrics,
        *,
        agent_timeout_s: float = 10.0,
        typing_delay_s: float = 0.3,
    ) -> None:
        self.store = store
        self.brain = brain
        self.channels = channels
        self.metrics = metrics
        self.agent_timeout_s = agent_timeout_s
        self.typing_delay_s = typing_delay_s
        self.handover_hooks: list[HandoverHook] = []
        self.held_hooks: list[HeldHook] = []
        self.turn_hooks: list[TurnHook] = []
        self.typing_hooks: list[TypingHook] = []
        self.responders: dict[ChannelKind, Responder] = {}
        self.linker: AccountLinker | None = None  # ties senders to backend accounts
        self.notifiers: dict[IdentityKind, Notifier] = {}
        self.live_replies: dict[ChannelKind, LiveOpener] = {}  # see gateway/streaming.py
        self._lanes: dict[int, _ConversationLane] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight: set[int] = set()  # inbound message ids being answered
        self.gate: TurnGate | None = None  # several nodes: one turn of a conversation at a time
        # Replies are stored queued with their turn and sent through it (gateway/outbox.py).
        self.outbox = Outbox(store, channels)

    # ------------------------------------------------------------------ intake

    async def handle(self, event: InboundMessage) -> Ingested:
        """Store `event` durably and schedule its answer. Returns after the commit."""
        received = time.perf_counter()
        if self.linker is not None:
            event = await self.linker.link(event)
        ingested = await self.store.ingest(event)
        channel = event.channel.value
        if ingested.duplicate:
            self.metrics.duplicates.labels(channel).inc()
            if not self._answered(ingested):
                self._schedule(ingested, received)
            return ingested
        self.metrics.messages.labels(channel, "inbound").inc()
        # Echo to the customer's other live sessions (a second browser tab).
        await publish(
            self.channels, event.channel, ingested.customer, ingested.conversation, ingested.message
        )
        self._schedule(ingested, received)
        return ingested

    async def customer_typing(self, identity: Identity, active: bool) -> None:
        """A customer started or stopped typing (web chat): shown to a rep who holds
        their conversation. Nothing is stored; a failure only loses the indicator."""
        for hook in self.typing_hooks:
            try:
                await hook(identity, active)
            except GatewayError as exc:
                log.debug("typing hook failed: %s", exc)

    def _answered(self, ingested: Ingested) -> bool:
        # A retry of a message that is being answered, or was, is not answered again.
        return ingested.handled or ingested.message.id in self._in_flight

    def _schedule(self, ingested: Ingested, received: float) -> None:
        self._in_flight.add(ingested.message.id)
        lane = self._lanes.get(ingested.conversation.id)
        if lane is None:
            lane = self._lanes[ingested.conversation.id] = _ConversationLane()
        lane.users += 1
        task = asyncio.create_task(self._answer(lane, ingested, received))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def recover(self) -> int:
        """Answer every inbound message that was stored but never answered."""
        pending = await self.resume(await self.store.unhandled_messages())
        if pending:
            log.info("recovering %d unanswered messages", pending)
        return pending

    async def resume(self, messages: list[Message]) -> int:
        """Answer stored messages (not being answered here already); returns how many."""
        count = 0
        for message in messages:
            if message.id in self._in_flight:
                continue
            customer = await self.store.get_customer(message.customer_id)
            conversation = await self.store.get_conversation(message.conversation_id)
            ingested = Ingested(customer=customer, conversation=conversation, message=message)
            self._schedule(ingested, time.perf_counter())
            count += 1
        return count

    async def drain(self) -> None:
        """Wait for every scheduled turn to finish (shutdown, tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # ------------------------------------------------------------------ turns

    async def _answer(self, lane: _ConversationLane, ingested: Ingested, received: float) -> None:
        conv_id = ingested.conversation.id
        try:
            async with lane.lock:
                if self.gate is not None:
                    lane.latest = await self._gated_turn(ingested, received, self.gate)
                    return
                conversation = ingested.conversation
                if lane.latest is not None and lane.latest.version > conversation.version:
                    conversation = lane.latest
                lane.latest = await self._run_turn(
                    ingested.customer, conversation, ingested, received
                )
        except Exception:
            # Nothing the customer sends may take the dispatcher down; the message
            # stays unhandled in the store and is answered by recover() on restart.
            log.exception("turn for conversation %s failed", conv_id)
        finally:
            self._in_flight.discard(ingested.message.id)
            lane.users -= 1
            if lane.users == 0:
                self._lanes.pop(conv_id, None)

    async def _gated_turn(
        self, ingested: Ingested, received: float, gate: TurnGate
    ) -> Conversation | None:
        """A turn while other nodes may take this conversation's messages: under its
        gate, and only if no node has answered the message meanwhile (re-read)."""
        async with gate.hold(ingested.conversation.id):
            # One read: whether it was answered, the conversation and customer as they
            # are now (another node may have moved them on), and the agent's history.
            fresh = await gate.fresh(ingested.message, self.brain.history_window)
            if fresh is None:
                return None
            return await self._run_turn(
                fresh.customer, fresh.conversation, ingested, received, history=fresh.history
            )

    async def _run_turn(
        self,
        customer: Customer,
        conversation: Conversation,
        ingested: Ingested,
        received: float,
        *,
        history: tuple[Message, ...] | None = None,
    ) -> Conversation:
        message = ingested.message
        responder = self.responders.get(message.channel)
        if responder is not None:
            own = await responder(customer, conversation, message)
            if own is not None:
                answered = await self._channel_turn(customer, conversation, message, own)
                if answered.state is not ConversationState.BOT:
                    for held in self.held_hooks:  # the rep still sees what was written
                        await held(customer, answered, message)
                return answered
        if conversation.state is not ConversationState.BOT:
            # A rep may have handed it back since this message was stored: read it again.
            conversation = await self.store.get_conversation(conversation.id)
        if conversation.state is not ConversationState.BOT:
            # A person holds (or will hold) this conversation: the agent stays silent.
            record = TurnRecord(
                conversation_id=conversation.id,
                expected_version=conversation.version,
                handled_message_id=message.id,
            )
            silent = (await record_turn(self.store, record, conversation)).conversation
            for held in self.held_hooks:
                await held(customer, silent, message)
            return silent
        opener = self.live_replies.get(conversation.channel)
        relay = Relay.open(self.brain, opener, customer, conversation, message)
        try:
            decision = await self._decide(customer, conversation, message, relay, history)
            decision = await send_notices(self.notifiers, decision)
            if relay is not None:  # the stored reply starts with what was already said
                decision = relay.cover(decision)
            record = turn_record(conversation, message, decision)
            stored = await record_turn(self.store, record, conversation)
        except BaseException:
            if relay is not None:
                relay.close()  # nothing stored: the live view stops after what it said
            raise
        channel = conversation.channel
        rest = stored.messages if relay is None else relay.deliver(stored.messages)
        for out in stored.messages:
            self.metrics.messages.labels(out.channel.value, "outbound").inc()
        # The streamed reply was said already, by the live view; the rest goes out now.
        await self.outbox.mark_sent([m for m in stored.messages if m not in rest])
        await self.outbox.send(customer, stored.conversation, rest)
        self.metrics.reply_latency.labels(channel.value).observe(time.perf_counter() - received)
        for action in decision.actions:
            if not isinstance(action, Reply):
                await signal(self.channels, channel, customer, stored.conversation, action)
            if isinstance(action, Transfer):
                self.metrics.handovers.labels(action.queue).inc()
                for hook in self.handover_hooks:
                    await hook(customer, stored.conversation)
        for turn_hook in self.turn_hooks:
            await turn_hook(customer, stored.conversation, record.events)
        return stored.conversation

    async def _channel_turn(
        self, customer: Customer, conversation: Conversation, message: Message, decision: Decision
    ) -> Conversation:
        """Store and send a channel's own answer (its replies go out on that channel)."""
        record = TurnRecord(
            conversation_id=conversation.id,
            expected_version=conversation.version,
            handled_message_id=message.id,
            outbound=tuple(
                OutboundDraft(text=a.text, channel=message.channel)
                for a in decision.actions
                if isinstance(a, Reply) and a.text.strip()
            ),
            events=decision.events,
        )
        stored = await record_turn(self.store, record, conversation)
        for out in stored.messages:
            self.metrics.messages.labels(out.channel.value, "outbound").inc()
        await self.outbox.send(customer, stored.conversation, stored.messages)
        return stored.conversation

    async def _decide(
        self,
        customer: Customer,
        conversation: Conversation,
        message: Message,
        relay: Relay | None = None,
        history: tuple[Message, ...] | None = None,
    ) -> Decision:
        # Show "typing" only when the answer is slow to come: a fast answer needs
        # no indicator, and every frame saved is one less write per message.
        shown: list[asyncio.Task[None]] = []
        typing = asyncio.get_running_loop().call_later(
            self.typing_delay_s,
            lambda: shown.append(
                asyncio.create_task(
                    signal(
                        self.channels,
                        conversation.channel,
                        customer,
                        conversation,
                        Typing(active=True),
                    )
                )
            ),
        )
        try:
            recent: list[Message] | tuple[Message, ...] = ()
            if history is not None:  # read with the turn's gate
                recent = history
            elif self.brain.history_window and _wants_history(self.brain, conversation):
                recent = await self.store.history(customer.id, limit=self.brain.history_window)
            context = TurnContext(
                customer=customer,
                conversation=conversation,
                message=message,
                # Messages that arrived after this one are answered in their own turns.
                history=tuple(m for m in recent if m.seq <= message.seq),
            )
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation.
            async with asyncio.timeout(self.agent_timeout_s):
                if relay is not None:
                    return await relay.ask(context)
                return await self.brain.respond(context)
        except TimeoutError:
            self.metrics.agent_failures.labels("timeout").inc()
            log.warning("agent timed out on conversation %s", conversation.id)
            return fallback_decision("the agent timed out")
        except Exception as exc:
            self.metrics.agent_failures.labels("error").inc()
            log.exception("agent failed on conversation %s", conversation.id)
            return fallback_decision(f"the agent failed: {type(exc).__name__}")
        finally:
            typing.cancel()
            if shown:
                await shown[0]
                await signal(
                    self.channels,
                    conversation.channel,
                    customer,
                    conversation,
                    Typing(active=False),
                )


def _wants_history(brain: Brain, conversation: Conversation) -> bool:
    """Whether to read the history for this turn: a brain may say, from the
    conversation alone, that it will not use it (`wants_history`, optional)."""
    wants = getattr(brain, "wants_history", None)
    return wants is None or bool(wants(conversation))
