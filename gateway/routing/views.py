"""`ConsoleViews`: what a rep's console reads (the JSON the page renders).

Reads only: the rep's overview (offers, held conversations, queue sizes, the
waiting work of their queues), one conversation with its brief, customer and
cross-channel timeline, and the directory of queues and reps a transfer can
go to. Whether a rep may see a conversation is `RoutingService.can_see`, plus
any `viewers` registered here (an approval waiting for an approver).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from gateway.errors import NotFoundError
from gateway.models import Direction, Identity, IdentityKind
from gateway.protocols import Store
from gateway.routing.intake import message_json
from gateway.routing.models import QueueEntry
from gateway.routing.service import RoutingService
from gateway.routing.store import RoutingStore

Viewer = Callable[[int, int], Awaitable[bool]]
"""(rep id, conversation id) -> may this rep see it for another reason."""

TIMELINE_LIMIT = 500
WAITING_SHOWN = 30  # the waiting list shows the first of a long queue (sizes say the rest)


class ConsoleViews:
    """The console's reads, each limited to what the rep may see."""

    def __init__(self, service: RoutingService, routing: RoutingStore) -> None:
        self.service = service
        self.router = service.router
        self.store: Store = service.store
        self.routing = routing
        self.viewers: list[Viewer] = []

    async def may_see(self, rep_id: int, conversation_id: int) -> bool:
        if self.service.can_see(rep_id, conversation_id):
            return True
        for viewer in self.viewers:
            if await viewer(rep_id, conversation_id):
                return True
        return False

    async def overview(self, rep_id: int) -> dict[str, Any]:
        """The rep's offers (`rings_phone`: a call's transfer is ringing their phone) and
        held conversations (`wrap_up`: a call whose line has closed), with who and what
        they are about; the queues they serve with their sizes, and the work waiting
        there (not offered to them; the first WAITING_SHOWN by priority).

        `seq` is the newest console event committed before this picture was taken:
        a console opening `/console/ws?after=seq` misses nothing that happened since
        (events replayed that the picture already shows change nothing)."""
        seq = await self.routing.last_console_seq()
        router = self.router
        queues = self.service.queues_of(rep_id)
        sizes = router.queue_sizes()
        offers = [
            (o, router.waiting[o.entry_id])
            for o in list(router.offers.values())
            if o.rep_id == rep_id and o.entry_id in router.waiting
        ]
        held = [e for e in list(router.held.values()) if e.rep_id == rep_id]
        offered = {entry.id for _, entry in offers}
        waiting = sorted(
            (e for e in list(router.waiting.values())
             if e.queue in queues and e.target_rep_id is None and e.from_rep_id is None
             and e.id not in offered),
            key=lambda e: (-e.priority, e.enqueued_at),
        )  # fmt: skip
        return {
            "seq": seq,
            "rep": self.service.rep(rep_id).model_dump(mode="json"),
            "offers": [
                {
                    "offer_id": o.id,
                    "expires_at": o.expires_at.isoformat(),
                    "rings_phone": o.id in router.phone_offers,
                    **await self._summary(entry),
                }
                for o, entry in offers
            ],
            "held": [
                {**await self._summary(e), "wrap_up": e.conversation_id in router.wrap_up}
                for e in held
            ],
            "queues": {q: sizes.get(q, 0) for q in queues},
            "waiting": [await self._summary(e) for e in waiting[:WAITING_SHOWN]],
            "waiting_total": len(waiting),
        }

    async def _summary(self, entry: QueueEntry) -> dict[str, Any]:
        """A queue entry with the customer's name, the channel and the brief's need."""
        data = entry.model_dump(mode="json")
        try:
            conv = await self.store.get_conversation(entry.conversation_id)
            customer = await self.store.get_customer(conv.customer_id)
        except NotFoundError:
            return data
        data.update(
            customer=customer.display_name or _first_identity(customer.identities),
            channel=conv.channel.value,
            state=conv.state.value,
            need=conv.brief.need if conv.brief else None,
            sentiment=conv.brief.sentiment.value if conv.brief else None,
        )
        return data

    async def conversation(self, rep_id: int, conversation_id: int) -> dict[str, Any]:
        """Brief, customer, cross-channel timeline (with this conversation's private
        notes) and audit log of a conversation the rep may see."""
        if not await self.may_see(rep_id, conversation_id):
            raise NotFoundError(f"no conversation {conversation_id} for you")
        conv = await self.store.get_conversation(conversation_id)
        customer = await self.store.get_customer(conv.customer_id)
        timeline = await self.store.history(customer.id, limit=TIMELINE_LIMIT)
        notes = [
            m
            for m in await self.store.conversation_messages(conversation_id)
            if m.direction is Direction.INTERNAL
        ]
        merged = sorted([*timeline, *notes], key=lambda m: m.seq)
        held = self.router.held.get(conversation_id)
        offers = [
            {"offer_id": o.id, "expires_at": o.expires_at.isoformat(),
             "note": self.router.waiting[o.entry_id].note,
             "from_rep_id": self.router.waiting[o.entry_id].from_rep_id}
            for o in list(self.router.offers.values())
            if o.rep_id == rep_id and o.entry_id in self.router.waiting
            and self.router.waiting[o.entry_id].conversation_id == conversation_id
        ]  # fmt: skip
        return {
            "conversation": conv.model_dump(mode="json", exclude={"agent_state"}),
            "customer": customer.model_dump(mode="json"),
            "messages": [message_json(m) for m in merged],
            "events": [e.model_dump(mode="json") for e in await self.store.events(conv.id)],
            "held_by_you": held is not None and held.rep_id == rep_id,
            "offers": offers,
        }

    def directory(self, rep_id: int) -> dict[str, Any]:
        """Where this rep can transfer to: every queue, and every other rep."""
        sizes = self.router.queue_sizes()
        reps = sorted(
            (r for r in self.router.reps.values() if r.id != rep_id),
            key=lambda r: r.display_name.lower(),
        )
        return {
            "queues": [{"name": q, "waiting": sizes.get(q, 0)} for q in self.router.queues],
            "reps": [
                {"id": r.id, "display_name": r.display_name, "presence": r.presence.value}
                for r in reps
            ],
        }


def _first_identity(identities: tuple[Identity, ...]) -> str | None:
    for identity in identities:
        if identity.kind in (IdentityKind.PHONE, IdentityKind.EMAIL):
            return identity.value
    return None


__all__ = ["ConsoleViews", "Viewer"]
