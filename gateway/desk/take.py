"""Taking an item from the waiting list (a rep, from a queue they serve) and a lead
assigning it to a rep: on the routing leader, the entry's pending offer (to whoever
it was offered) is withdrawn and an offer to the taker committed in one change,
then accepted as any offer is. Text conversations only: a waiting call is taken
when its transfer rings the rep's phone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.errors import ConflictError, NotFoundError
from gateway.models import Conversation
from gateway.routing.models import ConsoleEventDraft, WorkKind
from gateway.routing.service import RoutingService
from gateway.routing.store import OfferDraft, RoutingChange


async def take(
    service: RoutingService, entry_id: int, rep_id: int, *, by_lead: bool
) -> Conversation:
    """Give waiting entry `entry_id` to `rep_id` now. A rep may take only from queues
    they serve (NotFoundError otherwise: the entry's existence does not leak); a lead
    assigns to any enabled rep. ConflictError when it no longer waits or is a call."""
    router = service.router
    async with router.lock:
        entry = router.waiting.get(entry_id)
        visible = entry is not None and (by_lead or entry.queue in service.queues_of(rep_id))
        if entry is None or not visible:
            raise NotFoundError(f"no waiting entry {entry_id} for you")
        if rep_id not in router.reps:
            raise NotFoundError(f"no rep {rep_id}")
        if entry.kind is WorkKind.CALL or entry.from_rep_id is not None:
            raise ConflictError("a call or a transfer is taken by accepting its offer")
        pending = router.offer_of(entry.id)
        offered_to = router.offers[pending].rep_id if pending in router.offers else None
        withdrawn = router.withdraw_offers_for(entry.id)
        console = tuple(
            ConsoleEventDraft(kind="offer.closed", rep_id=offered_to,
                              data={"offer_id": u.offer_id, "status": "withdrawn"})
            for u in withdrawn if offered_to is not None
        )  # fmt: skip
        expires = datetime.now(UTC) + timedelta(seconds=router.settings.offer_timeout_s)
        applied = await router.apply(
            RoutingChange(
                offers=tuple(withdrawn),
                new_offer=OfferDraft(entry_id=entry.id, rep_id=rep_id, expires_at=expires),
                console=console,
            )
        )
        assert applied.offer is not None
        router.track_offer(applied.offer)
    return await service.accept(rep_id, applied.offer.id)


__all__ = ["take"]
