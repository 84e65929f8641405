"""`RoutingService`: everything a rep does, as a Python API (the HTTP API and
the websocket call it; so do tests and the benchmark).

A rep acts only on what is theirs: offers made to them and conversations they
hold. Every action commits (conversation state, queue entry, offer, console
events together) before it returns; messages to the customer then go out
through the customer's current channel exactly as the agent's replies do.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from gateway.errors import NotFoundError
from gateway.models import (
    AuthorKind,
    Conversation,
    ConversationState,
    Customer,
    Direction,
    Message,
    Typing,
)
from gateway.protocols import ChannelRegistry, EventDraft, OutboundDraft, Store
from gateway.routing.intake import Intake, deliver
from gateway.routing.models import (
    ConsoleEventDraft,
    OfferStatus,
    Outcome,
    Presence,
    QueueEntry,
    Rep,
    RepDraft,
    WorkKind,
)
from gateway.routing.router import Router, RoutingError
from gateway.routing.store import (
    DispositionDraft,
    EntryDraft,
    EntryUpdate,
    OfferUpdate,
    PresenceUpdate,
    RoutingChange,
)

RatingPrompt = Callable[[Conversation], Awaitable[str | None]]
"""The text asking the customer of a closed conversation for a rating, per channel."""
RatingControl = Callable[[Customer, Conversation], Awaitable[None]]
"""Shows a channel's own rating control (the web chat widget's buttons)."""

log = logging.getLogger(__name__)

MAX_REP_TEXT = 4000
HANDED_BACK_TEXT = "Thanks for your patience. Our virtual assistant will take it from here."


def first_name(display_name: str) -> str | None:
    """How a rep signs what the customer reads: their first name only."""
    words = display_name.split()
    return words[0][:100] if words else None


class RoutingService:
    """Rep actions (the console's reads are `gateway.routing.views.ConsoleViews`)."""

    def __init__(
        self,
        router: Router,
        intake: Intake,
        store: Store,
        channels: ChannelRegistry,
        *,
        rating_prompt: RatingPrompt | None = None,
        rating_control: RatingControl | None = None,
    ) -> None:
        self.router = router
        self.intake = intake
        self.store = store
        self.channels = channels
        self.rating_prompt = rating_prompt
        self.rating_control = rating_control

    # ----------------------------------------------------------------- views

    def rep(self, rep_id: int) -> Rep:
        rep = self.router.reps.get(rep_id)
        if rep is None:
            raise NotFoundError(f"no rep {rep_id}")
        return rep

    def queues_of(self, rep_id: int) -> tuple[str, ...]:
        return self.router.rep_queues(self.rep(rep_id))

    def can_see(self, rep_id: int, conversation_id: int) -> bool:
        """Held by the rep, offered to them, or waiting in a queue they serve."""
        router = self.router
        held = router.held.get(conversation_id)
        if held is not None and held.rep_id == rep_id:
            return True
        queues = self.queues_of(rep_id)
        for entry in router.entries_of(conversation_id):
            offered = any(
                o.rep_id == rep_id and o.entry_id == entry.id for o in router.offers.values()
            )
            if offered or (entry.target_rep_id is None and entry.queue in queues):
                return True
        return False

    # ------------------------------------------------------------ reps, presence

    async def add_rep(self, draft: RepDraft) -> Rep:
        """Store a new rep (offline until they set their presence)."""
        rep = await self.router.routing.add_rep(draft)
        self.router.add_rep(rep)
        return rep

    async def set_presence(self, rep_id: int, presence: Presence) -> Rep:
        self.rep(rep_id)
        return await self.router.set_presence(rep_id, presence)

    async def stop(self) -> None:
        return None

    # ---------------------------------------------------------------- offers

    async def accept(self, rep_id: int, offer_id: int) -> Conversation:
        """Take the conversation: it is `with_rep` (the agent falls silent) once this
        returns. A warm transfer completes here: the rep who asked lets go."""
        router = self.router
        async with router.lock:
            offer, entry = router.pending_offer(rep_id, offer_id)
            conv = await self.store.get_conversation(entry.conversation_id)
            prev = router.held.get(conv.id) if entry.from_rep_id is not None else None
            gone = (
                conv.state is not ConversationState.QUEUED
                if entry.from_rep_id is None
                else prev is None or prev.rep_id != entry.from_rep_id
            )
            if gone:  # closed or taken meanwhile: the entry is over
                await router.apply(RoutingChange(
                    offers=(OfferUpdate(offer_id=offer.id, status=OfferStatus.WITHDRAWN),),
                    entries=(EntryUpdate(entry_id=entry.id, ended=True, outcome=Outcome.LEFT),),
                    console=(router.size_event(entry.queue, -1),),
                ))  # fmt: skip
                router.untrack_offer(offer.id)
                router.take_waiting(entry.id)
                raise RoutingError(f"conversation {conv.id} is no longer waiting")
            rep = self.rep(rep_id)
            entries = [EntryUpdate(entry_id=entry.id, rep_id=rep_id)]
            console = [
                ConsoleEventDraft(kind="assigned", rep_id=rep_id,
                                  data={"conversation_id": conv.id, "offer_id": offer.id,
                                        "note": entry.note}),
                router.size_event(entry.queue, -1),
            ]  # fmt: skip
            if prev is not None:
                entries.append(EntryUpdate(entry_id=prev.id, ended=True,
                                           outcome=Outcome.TRANSFERRED))  # fmt: skip
                console.append(ConsoleEventDraft(kind="transfer.accepted", rep_id=prev.rep_id,
                                                 data={"conversation_id": conv.id,
                                                       "to_rep_id": rep_id}))  # fmt: skip
            applied = await router.apply(
                RoutingChange(
                    conversation_id=conv.id,
                    state=ConversationState.WITH_REP,
                    queue=entry.queue,
                    outbound=(OutboundDraft(
                        text=f"You're now talking with {rep.display_name}.",
                        author=AuthorKind.SYSTEM, channel=conv.channel),)
                    if entry.kind is WorkKind.TEXT else (),
                    events=(EventDraft(kind="rep.assigned", data={
                        "rep_id": rep_id, "rep": rep.username, "queue": entry.queue,
                        "offer_id": offer.id, "from_rep_id": entry.from_rep_id,
                        "note": entry.note}),),
                    entries=tuple(entries),
                    offers=(OfferUpdate(offer_id=offer.id, status=OfferStatus.ACCEPTED),),
                    presence=PresenceUpdate(rep_id=rep_id, busy=True),
                    console=tuple(console),
                )
            )  # fmt: skip
            router.untrack_offer(offer.id)
            router.take_waiting(entry.id)
            router.held[conv.id] = entry.model_copy(
                update={"rep_id": rep_id, "assigned_at": datetime.now(UTC)}
            )
            router.customer_of[conv.id] = conv.customer_id
            assert applied.rep is not None and applied.conversation is not None
            router.reps[rep_id] = applied.rep
        await self._deliver(applied.conversation, applied.messages)
        await router.pump()  # the first rep's capacity is free again (a transfer)
        return applied.conversation

    async def decline(self, rep_id: int, offer_id: int) -> None:
        await self.router.refuse(rep_id, offer_id, OfferStatus.DECLINED)

    # ------------------------------------------------------------ messages

    async def reply(self, rep_id: int, conversation_id: int, text: str) -> Message:
        """Answer the customer on their current channel (chat, SMS, email thread...)."""
        return await self._write(rep_id, conversation_id, text, internal=False)

    async def note(self, rep_id: int, conversation_id: int, text: str) -> Message:
        """A private note in the conversation: stored, shown to reps, never sent."""
        return await self._write(rep_id, conversation_id, text, internal=True)

    async def _write(self, rep_id: int, conversation_id: int, text: str, internal: bool) -> Message:
        text = text.strip()
        if not text or len(text) > MAX_REP_TEXT:
            raise ValueError(f"text must be 1 to {MAX_REP_TEXT} characters")
        self._held(rep_id, conversation_id)
        conv = await self.store.get_conversation(conversation_id)
        draft = (
            OutboundDraft(text=text, author=AuthorKind.REP, channel=conv.channel,
                          direction=Direction.INTERNAL)
            if internal
            else OutboundDraft(text=text, author=AuthorKind.REP, channel=conv.channel,
                               author_name=first_name(self.rep(rep_id).display_name))
        )  # fmt: skip
        applied = await self.router.apply(
            RoutingChange(
                conversation_id=conversation_id,
                outbound=(draft,),
                events=(EventDraft(kind="rep.note" if internal else "rep.reply",
                                   data={"rep_id": rep_id}),),
            )
        )  # fmt: skip
        assert applied.conversation is not None
        if not internal:
            await self._deliver(applied.conversation, applied.messages)
        return applied.messages[0]

    async def typing(self, rep_id: int, conversation_id: int, active: bool) -> None:
        """The rep is typing in a conversation they hold: the customer's widget shows it."""
        self._held(rep_id, conversation_id)
        conv = await self.store.get_conversation(conversation_id)
        channel = self.channels.get(conv.channel)
        if channel is not None:
            customer = await self.store.get_customer(conv.customer_id)
            await channel.signal(customer, conv, Typing(active=active))

    # ------------------------------------------------------------- transfer

    async def transfer(
        self, rep_id: int, conversation_id: int, *, queue: str | None = None,
        to_rep: int | None = None, note: str = "",
    ) -> QueueEntry:  # fmt: skip
        """Warm transfer: the conversation waits for another rep (of `queue`, or
        `to_rep`) while this rep keeps it; it changes hands when they accept."""
        router = self.router
        async with router.lock:
            held = self._held(rep_id, conversation_id)
            if any(e.from_rep_id == rep_id for e in router.entries_of(conversation_id)):
                raise RoutingError("a transfer of this conversation is already waiting")
            if to_rep is not None and (to_rep == rep_id or to_rep not in router.reps):
                raise RoutingError(f"cannot transfer to rep {to_rep}")
            if to_rep is None and queue not in router.queues:
                raise RoutingError(f"no queue {queue!r}")
            target_queue = queue if queue in router.queues else held.queue
            change = RoutingChange(
                conversation_id=conversation_id,
                events=(EventDraft(kind="transfer.requested", data={
                    "from_rep_id": rep_id, "to_rep_id": to_rep, "queue": target_queue,
                    "note": note}),),
                new_entry=EntryDraft(conversation_id=conversation_id, queue=target_queue,
                                     kind=held.kind, priority=held.priority, from_rep_id=rep_id,
                                     target_rep_id=to_rep, note=note or None),
            )  # fmt: skip
            applied = await router.apply(change)
            assert applied.entry is not None
            router.add_waiting(applied.entry)
        await router.pump()
        return applied.entry

    # --------------------------------------------------------------- release

    async def hand_back(self, rep_id: int, conversation_id: int) -> Conversation:
        """Give the conversation back to the agent, which answers the next message."""
        return await self._release(rep_id, conversation_id, Outcome.HANDED_BACK, None)

    async def close(
        self, rep_id: int, conversation_id: int, disposition: str, note: str | None = None
    ) -> Conversation:
        """Close with a disposition; the customer is asked for a rating."""
        draft = DispositionDraft(rep_id=rep_id, code=disposition, note=note)
        return await self._release(rep_id, conversation_id, Outcome.CLOSED, draft)

    async def _release(
        self, rep_id: int, conversation_id: int, outcome: Outcome,
        disposition: DispositionDraft | None,
    ) -> Conversation:  # fmt: skip
        router = self.router
        async with router.lock:
            held = self._held(rep_id, conversation_id)
            conv = await self.store.get_conversation(conversation_id)
            pending = [e for e in router.entries_of(conversation_id) if e.from_rep_id == rep_id]
            offers = [u for e in pending for u in router.withdraw_offers_for(e.id)]
            entries = [EntryUpdate(entry_id=held.id, ended=True, outcome=outcome)]
            entries += [EntryUpdate(entry_id=e.id, ended=True, outcome=Outcome.LEFT)
                        for e in pending]  # fmt: skip
            closing = outcome is Outcome.CLOSED
            text: str | None = HANDED_BACK_TEXT
            if closing:
                text = (await self.rating_prompt(conv)) if self.rating_prompt else None
            applied = await router.apply(
                RoutingChange(
                    conversation_id=conversation_id,
                    state=ConversationState.CLOSED if closing else ConversationState.BOT,
                    outbound=(OutboundDraft(text=text, author=AuthorKind.SYSTEM,
                                            channel=conv.channel),) if text else (),
                    events=(EventDraft(kind="rep.closed" if closing else "rep.handed_back",
                                       data={"rep_id": rep_id,
                                             "disposition": disposition.code if disposition
                                             else None}),),
                    entries=tuple(entries),
                    offers=tuple(offers),
                    disposition=disposition,
                    rating_request=closing,
                    console=(ConsoleEventDraft(kind="released", rep_id=rep_id,
                                               data={"conversation_id": conversation_id,
                                                     "outcome": outcome.value}),),
                )
            )  # fmt: skip
            router.held.pop(conversation_id, None)
            router.customer_of.pop(conversation_id, None)
            router.wrap_up.discard(conversation_id)
            for e in pending:
                router.take_waiting(e.id)
            router.note_handle_time(held)
            assert applied.conversation is not None
        await self._deliver(applied.conversation, applied.messages)
        if closing and self.rating_control is not None:
            customer = await self.store.get_customer(conv.customer_id)
            await self.rating_control(customer, applied.conversation)
        await router.pump()
        return applied.conversation

    # --------------------------------------------------------------- helpers

    def _held(self, rep_id: int, conversation_id: int) -> QueueEntry:
        entry = self.router.held.get(conversation_id)
        if entry is None or entry.rep_id != rep_id:
            raise RoutingError(f"you do not hold conversation {conversation_id}")
        return entry

    async def _deliver(self, conversation: Conversation, messages: tuple[Message, ...]) -> None:
        if messages:
            customer = await self.store.get_customer(conversation.customer_id)
            await deliver(self.intake.outbox, customer, conversation, messages)
