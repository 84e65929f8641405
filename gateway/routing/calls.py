"""A call's warm transfer as routing sees it: a rep's ringing phone is their offer.

When the agent hands a call over, the phone channel (channels/phone/transfer/warm.py)
reserves the conversation here (`open`) before the dispatcher queues it: the
conversation is `claimed`, so the router never offers its queue entry on a
console alone. The transfer then asks for reps one at a time (`next`): the best
by the router's own rule (`matching.ranked_takers`: the queue's skills,
`available`, spare call capacity, least recently busy) who has a phone number in
their profile and was not rung for this call yet. Each ring is an ordinary offer
of the entry (`rings_phone`): the rep's console shows it, with the brief and the
live transcript, while their phone rings; it holds a unit of their call
capacity; and it ends like any offer:

- the rep presses 1 after the spoken brief (`take`): `RoutingService.accept`, as a
  console accept does: the conversation is `with_rep` and the agent is silent;
- no answer, busy, a failed call (expired), or no key / another key (declined):
  the transfer says so with its next `next`, which rings the next rep;
- declined in the console, withdrawn (the rep left `available`) or past its
  deadline: the transfer is told (`OfferClosed`, on the node holding the call)
  and rings the next rep;
- accepted in the console: that rep holds the conversation (one holder: it was
  their offer); their phone rings on (or rings next, if it was not ringing) and
  1 joins them to the caller. Nobody else is rung: should their phone fail, the
  caller is offered a callback and the rep keeps the conversation.

With nobody left the transfer ends (`end`): the claim goes and the entry keeps
waiting in its queue, as a text conversation nobody took does, offered on the
consoles in rounds (a rep who takes it calls back). A completed call stays with
its rep for wrap-up (a `rep.wrap_up` event): their call capacity is free again and
they close it with a disposition, or hand it back, in the console. A line of
GATEWAY_TRANSFER_NUMBERS that takes a call is no rep: the entry ends when the line
accepts, and the conversation closes when that call is over.

`CallOffers` runs on the leader; `call_routing.CallRouting` is what the phone
channel calls on any node, through `RoutingFront`. Claims live in the leader's memory, each with a
deadline: when the node holding the call dies, or leadership moves, the entry is
at worst offered on the consoles as usual once the deadline has passed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.bus import Bus, Data
from gateway.errors import ConflictError, GatewayError, NotFoundError
from gateway.models import ConversationState
from gateway.protocols import EventDraft
from gateway.routing import matching
from gateway.routing.call_routing import NEWS
from gateway.routing.front import RoutingFront
from gateway.routing.intake import Intake
from gateway.routing.models import (
    CallNext,
    CallTarget,
    ConsoleEventDraft,
    Offer,
    OfferClosed,
    OfferStatus,
    Outcome,
    QueueEntry,
    Rep,
    WorkKind,
)
from gateway.routing.router import WRAP_UP
from gateway.routing.service import RoutingService
from gateway.routing.store import EntryUpdate, OfferDraft, OfferUpdate, RoutingChange

log = logging.getLogger(__name__)

RESERVE_S = 60.0  # a claim with nothing ringing lapses (the hold prompt plays up to 30 s)
BRIEF_S = 120.0  # allowance for the spoken brief in a ringing offer's deadline
GRACE_S = 10.0  # a claim outlives its offer's deadline by this (the transfer's next move)


@dataclass
class Claim:
    """The leader's record of one call's transfer offering its conversation."""

    node: str  # the node holding the call
    transfer_id: str | None = None  # None while the hold prompt plays
    offer_id: int | None = None  # the offer ringing now
    tried: set[int] = field(default_factory=set)  # reps rung for this call
    timer: asyncio.TimerHandle | None = None


@dataclass
class Closing:
    """Offers ended by one routing step, and their console events (applied together)."""

    offers: list[OfferUpdate] = field(default_factory=list)
    console: list[ConsoleEventDraft] = field(default_factory=list)


def _outcome_status(outcome: str | None) -> OfferStatus:
    return OfferStatus.DECLINED if outcome == "declined" else OfferStatus.EXPIRED


class CallOffers:
    """The leader's side; see the module docstring. Every method runs under the
    router's lock (or calls the service, which takes it)."""

    def __init__(self, service: RoutingService, intake: Intake, bus: Bus) -> None:
        self.service = service
        self.router = service.router
        self.intake = intake
        self.bus = bus
        settings = self.router.settings
        # A ringing offer's deadline: the ring, the brief, then the time to press 1.
        self.offer_s = (
            settings.transfer_ring_timeout_s + BRIEF_S + settings.transfer_accept_timeout_s
        )
        self.claims: dict[int, Claim] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.router.on_offer_closed.append(self._offer_closed)

    def register(self, front: RoutingFront) -> None:
        for name, method in (("call_open", self.open), ("call_next", self.next),
                             ("call_take", self.take), ("call_end", self.end)):  # fmt: skip
            front.register(name, method)

    async def stop(self) -> None:
        for claim in self.claims.values():
            if claim.timer is not None:
                claim.timer.cancel()
        self.claims.clear()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # ------------------------------------------------------------ served

    async def open(self, d: Data) -> Data:
        """Claim the conversation (queueing it first if the handover has not yet) and
        preview whom `next` would ring now, best first."""
        cid = int(d["conversation_id"])
        router = self.router
        async with router.lock:
            claim = self._claim(cid, d)
            self._arm(cid, claim, RESERVE_S)
            queued = cid in router.held or bool(router.entries_of(cid))
        if not queued:
            conversation = await router.store.get_conversation(cid)
            if conversation.state is ConversationState.QUEUED:
                customer = await router.store.get_customer(conversation.customer_id)
                await self.intake.handover(customer, conversation)  # the pump skips it
        async with router.lock:
            entry = self._entry(cid)
            reps = [] if entry is None else self._ranked(entry, claim)
            return {"reps": [CallTarget(rep_id=r.id, name=r.display_name, phone=r.phone or "")
                             .model_dump(mode="json") for r in reps]}  # fmt: skip

    async def next(self, d: Data) -> Data:
        """Close the offer of the rep who did not take the call (`offer_id`, `outcome`)
        and offer it to the next rep by ringing their phone."""
        cid = int(d["conversation_id"])
        router = self.router
        async with router.lock:
            claim = self._claim(cid, d)
            closing = Closing()
            self._close_offer(d.get("offer_id"), _outcome_status(d.get("outcome")), closing)
            if claim.offer_id is not None and claim.offer_id not in router.offers:
                claim.offer_id = None
            held = router.held.get(cid)
            entry = self._entry(cid)
            if held is not None and held.rep_id is not None:
                # A rep took it in the console (before their phone rang, or the call was
                # signalled on another node): their phone rings, once; nobody else's.
                holder = router.reps.get(held.rep_id)
                if holder is not None and holder.phone and holder.id not in claim.tried:
                    claim.tried.add(holder.id)
                    self._arm(cid, claim, self.offer_s + GRACE_S)
                    await self._apply(closing)
                    target = CallTarget(rep_id=holder.id, name=holder.display_name,
                                        phone=holder.phone)  # fmt: skip
                    return CallNext(target=target, held_by=holder.id).model_dump(mode="json")
                self._release(cid, closing)
                await self._apply(closing)
                return CallNext(held_by=held.rep_id).model_dump(mode="json")
            if entry is None:  # it left the queue (closed, handed back)
                self._release(cid, closing)
                await self._apply(closing)
                return CallNext().model_dump(mode="json")
            # An offer made before this call was claimed (a leader that took over) is
            # withdrawn: from now on the reps' phones are its offers.
            pending = router.offer_of(entry.id)
            if pending is not None and pending != claim.offer_id:
                self._close_offer(pending, OfferStatus.WITHDRAWN, closing)
            ranked = self._ranked(entry, claim)
            if not ranked:
                self._arm(cid, claim, self.offer_s + GRACE_S)  # a configured line may ring
                await self._apply(closing)
                return CallNext().model_dump(mode="json")
            rep = ranked[0]
            deadline = datetime.now(UTC) + timedelta(seconds=self.offer_s)
            applied = await router.apply(
                RoutingChange(
                    offers=tuple(closing.offers), console=tuple(closing.console),
                    new_offer=OfferDraft(entry_id=entry.id, rep_id=rep.id, expires_at=deadline,
                                         announce={**router.offer_data(entry),
                                                   "rings_phone": True}),
                )
            )  # fmt: skip
            assert applied.offer is not None
            router.track_offer(applied.offer)
            router.phone_offers.add(applied.offer.id)
            claim.offer_id = applied.offer.id
            claim.tried.add(rep.id)
            self._arm(cid, claim, self.offer_s + GRACE_S)
            target = CallTarget(rep_id=rep.id, name=rep.display_name, phone=rep.phone or "",
                                offer_id=applied.offer.id)  # fmt: skip
            return CallNext(target=target).model_dump(mode="json")

    async def take(self, d: Data) -> Data:
        """The rep (`rep_id`, `offer_id`) pressed 1, or a configured line (`rep_id`
        None) did: `taken` says whether they now have the call."""
        cid = int(d["conversation_id"])
        router = self.router
        rep_id, offer_id = d.get("rep_id"), d.get("offer_id")
        if rep_id is None:
            return {"taken": await self._line_takes(cid, str(d.get("line") or ""))}
        async with router.lock:
            held = router.held.get(cid)
        if held is None or held.rep_id != rep_id:  # else: they accepted in the console
            try:
                await self.service.accept(int(rep_id), int(offer_id or 0))
            except (ConflictError, NotFoundError) as exc:
                log.info("conversation %s: rep %s cannot take the call: %s", cid, rep_id, exc)
                return {"taken": False}
        async with router.lock:
            self._release(cid, Closing())  # its offer was just accepted: nothing to withdraw
            router.wrap_up.discard(cid)  # a call is live on it (again)
        return {"taken": True}

    async def end(self, d: Data) -> Data:
        """The transfer is over (`state`): release the claim; a completed call stays
        with its rep for wrap-up (capacity free), or closes without one."""
        cid, state = int(d["conversation_id"]), str(d["state"])
        router = self.router
        async with router.lock:
            claim = self.claims.get(cid)
            closing = Closing()
            ours = claim is not None and d.get("transfer_id") in (None, claim.transfer_id)
            if ours or (claim is not None and claim.transfer_id is None):
                self._release(cid, closing)
            held = router.held.get(cid)
            events: list[EventDraft] = []
            closed = False
            if state == "completed" and held is not None and held.rep_id is not None:
                if held.kind is WorkKind.CALL and cid not in router.wrap_up:
                    events.append(EventDraft(kind=WRAP_UP, data={"rep_id": held.rep_id,
                                                                 "entry_id": held.id}))  # fmt: skip
                    wrap_up = {"conversation_id": cid}
                    closing.console.append(
                        ConsoleEventDraft(kind="wrap_up", rep_id=held.rep_id, data=wrap_up)
                    )
            elif state == "completed" and held is None and not router.entries_of(cid):
                conversation = await router.store.get_conversation(cid)
                closed = conversation.state is ConversationState.WITH_REP
                if closed:  # a configured line had it: nobody in routing holds it
                    events.append(EventDraft(kind="call.closed", data={
                        "reason": "the call a transfer line took is over"}))  # fmt: skip
            if events or closing.offers or closing.console:
                await router.apply(
                    RoutingChange(
                        conversation_id=cid if events else None, events=tuple(events),
                        state=ConversationState.CLOSED if closed else None,
                        offers=tuple(closing.offers), console=tuple(closing.console),
                    )
                )  # fmt: skip
            if events and not closed:
                router.wrap_up.add(cid)
        await router.pump()  # the rep's call capacity, or the entry, is free to offer
        return {}

    # ----------------------------------------------------------- helpers

    def _claim(self, cid: int, d: Data) -> Claim:
        claim = self.claims.get(cid)
        if claim is None or cid not in self.router.claimed:  # new, or from a past leadership
            if claim is not None and claim.timer is not None:
                claim.timer.cancel()
            claim = self.claims[cid] = Claim(node=str(d["node"]))
            self.router.claimed.add(cid)
        claim.node = str(d["node"])
        if d.get("transfer_id"):
            claim.transfer_id = str(d["transfer_id"])
        return claim

    def _entry(self, cid: int) -> QueueEntry | None:
        """The conversation's own waiting entry (not a rep's transfer of it)."""
        entries = self.router.entries_of(cid)
        return next((e for e in entries if e.from_rep_id is None and e.target_rep_id is None), None)

    def _ranked(self, entry: QueueEntry, claim: Claim) -> list[Rep]:
        router = self.router
        ranked = matching.ranked_takers(
            entry, reps=router.reps.values(), loads=router.loads(), capacity=router.capacity,
            queues=router.queues, passed=claim.tried,
        )  # fmt: skip
        return [r for r in ranked if r.phone]

    def _close_offer(self, offer_id: Any, status: OfferStatus, closing: Closing) -> bool:
        """(Under the lock) end a pending offer, adding its update and console event to
        `closing`; False when it was not pending."""
        offer = self.router.untrack_offer(int(offer_id)) if offer_id is not None else None
        if offer is None:
            return False
        closing.offers.append(OfferUpdate(offer_id=offer.id, status=status))
        closing.console.append(ConsoleEventDraft(
            kind="offer.closed", rep_id=offer.rep_id,
            data={"offer_id": offer.id, "status": status.value}))  # fmt: skip
        return True

    def _release(self, cid: int, closing: Closing) -> bool:
        """(Under the lock) drop the claim; its ringing offer, if pending, is withdrawn
        (into `closing`, for the caller to apply): True if it was."""
        claim = self.claims.pop(cid, None)
        self.router.claimed.discard(cid)
        if claim is None:
            return False
        if claim.timer is not None:
            claim.timer.cancel()
        return self._close_offer(claim.offer_id, OfferStatus.WITHDRAWN, closing)

    async def _apply(self, closing: Closing) -> None:
        if closing.offers or closing.console:
            await self.router.apply(
                RoutingChange(offers=tuple(closing.offers), console=tuple(closing.console))
            )

    async def _line_takes(self, cid: int, line: str) -> bool:
        router = self.router
        async with router.lock:
            if cid in router.held:  # a rep holds it: one holder
                return False
            closing = Closing()
            self._release(cid, closing)
            entry = self._entry(cid)
            if entry is not None:
                self._close_offer(router.offer_of(entry.id), OfferStatus.WITHDRAWN, closing)
                closing.console.append(router.size_event(entry.queue, -1))
            await router.apply(
                RoutingChange(
                    conversation_id=cid, state=ConversationState.WITH_REP,
                    events=(EventDraft(kind="queue.left", data={
                        "reason": "a transfer line took the call", "line": line}),),
                    entries=(EntryUpdate(entry_id=entry.id, ended=True, outcome=Outcome.LEFT),)
                    if entry is not None else (),
                    offers=tuple(closing.offers), console=tuple(closing.console),
                )
            )  # fmt: skip
            if entry is not None:
                router.take_waiting(entry.id)
        return True

    def _arm(self, cid: int, claim: Claim, seconds: float) -> None:
        if claim.timer is not None:
            claim.timer.cancel()
        claim.timer = asyncio.get_running_loop().call_later(
            seconds, lambda: self._spawn(self._lapse(cid, claim))
        )

    async def _lapse(self, cid: int, claim: Claim) -> None:
        """The call's transfer went quiet past its deadline (its node died?): the entry
        is offered on the consoles as usual."""
        router = self.router
        async with router.lock:
            if self.claims.get(cid) is not claim:
                return
            ringing = claim.offer_id
            closing = Closing()
            withdrawn = self._release(cid, closing)
            await self._apply(closing)
        log.warning("conversation %s: its call's transfer went quiet; the queue offers it", cid)
        if withdrawn and ringing is not None:
            self._tell(cid, claim, ringing, OfferStatus.WITHDRAWN)
        await router.pump()

    async def _offer_closed(self, offer: Offer, status: OfferStatus) -> None:
        """A router hook: an offer ended outside the call's transfer; the node holding
        the call rings the next rep."""
        for cid, claim in self.claims.items():
            if claim.offer_id == offer.id:
                claim.offer_id = None
                self._tell(cid, claim, offer.id, status)
                return

    def _tell(self, cid: int, claim: Claim, offer_id: int, status: OfferStatus) -> None:
        """Tell the node holding the call that its ringing rep's offer ended."""
        if claim.transfer_id is None:
            return
        news = OfferClosed(transfer_id=claim.transfer_id, conversation_id=cid,
                           offer_id=offer_id, status=status)  # fmt: skip
        self._spawn(self.bus.call(claim.node, NEWS, news.model_dump(mode="json"), timeout_s=10))

    def _spawn(self, coro: Awaitable[Any]) -> None:
        async def run() -> None:
            try:
                await coro
            except GatewayError as exc:  # the node holding the call is gone: so is the call
                log.warning("routing: a call's transfer could not be told: %s", exc)
            except Exception:
                log.exception("routing: a call's transfer step failed")

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


__all__ = ["CallOffers"]
