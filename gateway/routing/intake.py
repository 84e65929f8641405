"""Where conversations enter the queues: the agent's handover, and what the
customer writes while they wait or while a rep holds the conversation."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from gateway.errors import GatewayError
from gateway.models import (
    AuthorKind,
    Conversation,
    ConversationState,
    Customer,
    Identity,
    Message,
)
from gateway.outbox import Outbox
from gateway.protocols import ChannelRegistry, EventDraft, OutboundDraft
from gateway.routing import policy
from gateway.routing.models import ConsoleEventDraft, WorkKind
from gateway.routing.reach import (
    AccountFacts,
    AccountLookup,
    Reach,
    confirmation,
    masked_email,
    masked_phone,
)
from gateway.routing.router import Router
from gateway.routing.store import EntryDraft, RoutingChange

log = logging.getLogger(__name__)


_CHOICES = {"callback": "callback", "call": "callback", "sms": "sms", "text": "sms",
            "email": "email", "mail": "email"}  # fmt: skip


async def deliver(
    outbox: Outbox,
    customer: Customer,
    conversation: Conversation,
    messages: Sequence[Message],
) -> None:
    """Send stored messages exactly as the agent's replies are sent: through the
    outbox, on the channel each was stored for (the customer's current one)."""
    await outbox.send(customer, conversation, messages)


def message_json(message: Message) -> dict[str, object]:
    """A message as consoles see it: attachments by name, type and size (or why one
    was refused), never where a file lies on disk or at the provider."""
    data = message.model_dump(mode="json", exclude={"attachments"})
    data["attachments"] = [
        a.model_dump(mode="json", include={"filename", "content_type", "size", "refused"})
        for a in message.attachments
    ]
    return data


def audience(
    router: Router, conversation_id: int, kind: str, data: dict[str, Any]
) -> tuple[ConsoleEventDraft, ...]:
    """One console event for everyone who may see the conversation now: the rep who
    holds it, the rep a transfer of it is offered to, and the reps of the queue it
    waits in (events are filtered by queue for them)."""
    drafts: list[ConsoleEventDraft] = []
    held = router.held.get(conversation_id)
    if held is not None and held.rep_id is not None:
        drafts.append(ConsoleEventDraft(kind=kind, rep_id=held.rep_id, data=data))
    for entry in router.entries_of(conversation_id):
        if entry.from_rep_id is None and entry.target_rep_id is None:
            drafts.append(ConsoleEventDraft(kind=kind, queue=entry.queue, data=data))
            continue
        offered = {o.rep_id for o in router.offers.values() if o.entry_id == entry.id}
        drafts += [ConsoleEventDraft(kind=kind, rep_id=r, data=data) for r in sorted(offered)]
    return tuple(drafts)


class Intake:
    """Puts handed-over conversations in their queue and tells the customer what next."""

    def __init__(
        self, router: Router, channels: ChannelRegistry, outbox: Outbox, *,
        account_of: AccountLookup | None = None,
    ) -> None:  # fmt: skip
        self.router = router
        self.channels = channels
        self.outbox = outbox
        self.account_of = account_of
        settings = router.settings
        self.hours = policy.parse_hours(settings.business_hours)
        self.tz = ZoneInfo(settings.business_timezone)

    async def handover(self, customer: Customer, conversation: Conversation) -> None:
        """A dispatcher handover hook: the conversation is `queued` with its brief."""
        router = self.router
        brief_queue = conversation.brief.queue if conversation.brief else None
        queue = router.queue_for(conversation.queue or brief_queue)
        facts = await self._account(customer)
        tier = facts.tier if facts is not None else None
        priority = policy.base_priority(conversation.brief, tier)
        kind = WorkKind.of(conversation.channel)
        async with router.lock:
            if conversation.id in router.held or router.entries_of(conversation.id):
                return  # already queued (a retried handover)
            now = datetime.now(UTC)
            ahead = sum(
                1
                for e in router.waiting.values()
                if e.queue == queue
                and policy.effective_priority(e.priority, (now - e.enqueued_at).total_seconds())
                >= priority
            )
            open_now = policy.is_open(self.hours, self.tz, now)
            available = router.available_for(queue)
            wait = router.estimate_wait(queue, ahead) if open_now else None
            reach = Reach.of(customer, facts)
            text = self._notice(reach, open_now, available, policy.describe_wait(wait))
            change = RoutingChange(
                conversation_id=conversation.id,
                queue=queue,
                # A caller hears the phone channel's own hold flow (warm transfer) instead.
                outbound=(OutboundDraft(text=text, author=AuthorKind.SYSTEM,
                                        channel=conversation.channel),)
                if kind is WorkKind.TEXT else (),
                events=(EventDraft(kind="queue.entered", data={
                    "queue": queue, "priority": priority, "tier": tier, "ahead": ahead,
                    "estimated_wait_s": None if wait is None else round(wait),
                    "open": open_now, "rep_available": available, "notice": text}),),
                new_entry=EntryDraft(conversation_id=conversation.id, queue=queue, kind=kind,
                                     priority=priority),
                console=(router.size_event(queue, +1),),
            )  # fmt: skip
            applied = await router.apply(change)
            assert applied.entry is not None
            router.add_waiting(applied.entry)
        assert applied.conversation is not None
        await deliver(self.outbox, customer, applied.conversation, applied.messages)
        await router.pump()

    async def call_step(self, conversation_id: int, kind: str, data: dict[str, Any]) -> None:
        """A warm-transfer hook of the phone channel (`transfer.ringing`, `.connected`...):
        consoles that see the call show how far its transfer got."""
        step: dict[str, Any] = {
            "conversation_id": conversation_id,
            "step": kind.removeprefix("transfer."),
        }
        step.update((k, data[k]) for k in ("rep_name", "attempt", "reason", "outcome") if k in data)
        console = audience(self.router, conversation_id, "call.transfer", step)
        if console:
            await self.router.apply(RoutingChange(console=console))

    async def _account(self, customer: Customer) -> AccountFacts | None:
        if self.account_of is None or not customer.account_ref:
            return None
        try:
            return await self.account_of(customer)
        except GatewayError as exc:  # a queue entry without the tier beats none
            log.warning("account lookup failed: %s", exc)
            return None

    def _notice(self, reach: Reach, open_now: bool, available: bool, wait: str | None) -> str:
        """The one notice a customer gets on entering the queue (every text channel):
        when someone will be with them, or why not yet and what else they can do."""
        if open_now and available:
            if wait is None:
                return "A member of our team will be with you as soon as possible."
            return f"A member of our team will be with you in {wait}."
        if not open_now:
            lead = "We're closed right now"
        elif wait is None:
            lead = "Nobody from our team is free right now"
        else:
            lead = f"Nobody from our team is free right now; the expected wait is {wait}"
        options = []
        if reach.phone:
            options += ["CALLBACK for a call back", "SMS to continue by text message"]
        if reach.email:
            options.append("EMAIL to continue by email")
        text = (
            f"{lead}. You keep your place in the queue and nobody will ask you to repeat"
            " yourself: the first person free picks this up."
        )
        if options:
            text += " Reply " + ", ".join(options[:-1]) + (" or " if len(options) > 1 else "")
            text += options[-1] + "."
        on_record = [masked_phone(reach.phone)] if reach.phone and reach.phone_on_record else []
        if reach.email and reach.email_on_record:
            on_record.append(masked_email(reach.email))
        if on_record:
            text += f" We'd use the contact details on your account: {' and '.join(on_record)}."
        return text

    async def typing(self, identity: Identity, active: bool) -> None:
        """A dispatcher typing hook: show the customer typing on the holding rep's console."""
        router = self.router
        if not router.held:
            return
        customer = await router.store.find_customer(identity)
        entry = None if customer is None else router.held_for_customer(customer.id)
        if entry is not None and entry.rep_id is not None:
            frame = {"type": "typing", "conversation_id": entry.conversation_id, "active": active}
            router.feed.transient(entry.rep_id, frame)

    async def held_message(
        self, customer: Customer, conversation: Conversation, message: Message
    ) -> None:
        """A dispatcher hook for a customer message the agent stays silent on."""
        router = self.router
        # The holding rep, and the reps who may take it over (a caller's words on hold
        # are the live transcript a rep reads while the offer rings).
        data = {"conversation_id": conversation.id, "message": message_json(message)}
        console = audience(router, conversation.id, "message", data)
        if console:
            await router.apply(RoutingChange(console=console))
        if conversation.state is not ConversationState.QUEUED:
            return
        word = re.sub(r"[^a-z]", "", message.text.lower())
        choice = _CHOICES.get(word)
        if choice is None:
            return
        reach = Reach.of(customer, await self._account(customer))
        confirmed = confirmation(choice, reach, conversation.channel)
        if confirmed is None:
            return  # nowhere to call or write to: the word was just a word
        confirm, to = confirmed
        data = {
            "choice": choice,
            "message_id": message.id,
            "to": to,
            "on_record": reach.email_on_record if choice == "email" else reach.phone_on_record,
        }
        applied = await router.apply(
            RoutingChange(
                conversation_id=conversation.id,
                outbound=(OutboundDraft(text=confirm, author=AuthorKind.SYSTEM,
                                        channel=conversation.channel),),
                events=(EventDraft(kind="queue.choice", data=data),),
            )
        )  # fmt: skip
        assert applied.conversation is not None
        await deliver(self.outbox, customer, applied.conversation, applied.messages)
