"""Queues and offers: who is offered which waiting conversation, and when.

The router keeps an in-memory picture (reps, their load, waiting and held queue
entries, pending offers: routing/picture.py) that is rebuilt from the
`RoutingStore` on start, and changes it only after the store has committed the
change. All changes run under one lock, so two offers never race for the last
unit of a rep's capacity.

Matching: waiting entries in order of priority (aged by waiting time), each to
the eligible rep (has the queue's skills, available, spare capacity for its
kind of work, not tried for it yet) who was least recently busy. An offer not
accepted in time, or declined, goes to the next rep.

A call's warm transfer offers its conversation itself, by ringing the reps'
phones (routing/calls.py): the router skips the waiting entries of `claimed`
conversations, and a held call whose line is closed (`wrap_up`) no longer uses
its rep's call capacity.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta

from gateway.errors import ConflictError
from gateway.metrics import Metrics
from gateway.models import Conversation, Customer
from gateway.protocols import Store
from gateway.routing.feed import ConsoleFeed
from gateway.routing.models import (
    ConsoleEventDraft,
    Offer,
    OfferStatus,
    Outcome,
    Presence,
    QueueEntry,
    Rep,
    WorkKind,
)
from gateway.routing.picture import RoutingPicture
from gateway.routing.store import (
    Applied,
    EntryUpdate,
    OfferDraft,
    OfferUpdate,
    PresenceUpdate,
    RoutingChange,
    RoutingStore,
)
from gateway.settings import Settings

log = logging.getLogger(__name__)

WRAP_UP = "rep.wrap_up"  # the audit event of a held call whose line has closed


class RoutingError(ConflictError):
    """A rep action that does not apply (an offer gone, a conversation not theirs)."""


class Router(RoutingPicture):
    """The queue and offer engine: it commits changes to its picture (`RoutingPicture`,
    which answers the reads). Rep-facing actions live in `RoutingService`."""

    def __init__(
        self, settings: Settings, store: Store, routing: RoutingStore, feed: ConsoleFeed,
        metrics: Metrics | None = None,
    ) -> None:  # fmt: skip
        super().__init__(settings)
        self.store = store
        self.metrics = metrics  # counts what routing stores for customers (rep replies...)
        self.routing = routing
        self.feed = feed
        self.lock = asyncio.Lock()
        self._timers: dict[int, asyncio.TimerHandle] = {}  # offer id -> its expiry
        self._rounds: dict[int, asyncio.TimerHandle] = {}  # entry id -> its next round
        self._tasks: set[asyncio.Task[None]] = set()
        self.on_offer: list[Callable[[Offer, QueueEntry], Awaitable[None]]] = []
        # An offer ended by someone other than its taker's phone (a console decline,
        # its deadline, a presence change): the call's transfer rings the next rep.
        self.on_offer_closed: list[Callable[[Offer, OfferStatus], Awaitable[None]]] = []
        self.on_orphan: list[Callable[[Customer, Conversation], Awaitable[None]]] = []

    # ------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Rebuild from the store: queued work survives a restart; pending offers are
        re-issued with a fresh deadline (their consoles were disconnected)."""
        keep = timedelta(days=self.settings.console_events_days)
        pruned = await self.routing.prune_console(datetime.now(UTC) - keep)
        if pruned:
            log.info("routing: %d old console events deleted", pruned)
        async with self.lock:
            self.reps = {r.id: r for r in await self.routing.list_reps()}
            for entry in await self.routing.open_entries():
                if entry.rep_id is None:
                    self.waiting[entry.id] = entry
                else:
                    self.held[entry.conversation_id] = entry
                    conv = await self.store.get_conversation(entry.conversation_id)
                    self.customer_of[conv.id] = conv.customer_id
                    if entry.kind is WorkKind.CALL and await self._wrapped_up(entry):
                        self.wrap_up.add(conv.id)
            self.handle_times.extend(reversed(await self.routing.handle_times(50)))
            for offer in await self.routing.pending_offers():
                offered = self.waiting.get(offer.entry_id)
                if offered is None:
                    await self.apply(
                        RoutingChange(offers=(OfferUpdate(offer_id=offer.id,
                                                          status=OfferStatus.WITHDRAWN),))
                    )  # fmt: skip
                    continue
                expires = self._deadline()
                console = self._offer_event(
                    offer.model_copy(update={"expires_at": expires}), offered
                )
                await self.apply(
                    RoutingChange(
                        offers=(OfferUpdate(offer_id=offer.id, status=OfferStatus.PENDING,
                                            expires_at=expires),),
                        console=(console,),
                    )
                )  # fmt: skip
                self.track_offer(offer.model_copy(update={"expires_at": expires}))
        if self.waiting:
            log.info("routing: %d queued conversations restored", len(self.waiting))
        await self.pump()

    async def stop(self) -> None:
        for timer in (*self._timers.values(), *self._rounds.values()):
            timer.cancel()
        self._timers.clear()
        self._rounds.clear()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        # Another node may lead from now on: nothing of this picture stays true.
        for table in (self.reps, self.waiting, self.held, self.customer_of, self.offers,
                      self._offer_of, self._tried, self.claimed, self.phone_offers,
                      self.wrap_up):  # fmt: skip
            table.clear()

    async def _wrapped_up(self, entry: QueueEntry) -> bool:
        """Whether the call of a held conversation is over (its holder wraps it up):
        a `rep.wrap_up` in its log after the last call connected."""
        kinds = [e.kind for e in await self.store.events(entry.conversation_id)]
        over = max((i for i, k in enumerate(kinds) if k == WRAP_UP), default=-1)
        return over > max((i for i, k in enumerate(kinds) if k == "transfer.connected"), default=-1)

    async def reconcile(self) -> int:
        """Queue conversations left `queued` without a queue entry (a node died between
        the agent's handover and its queueing); returns how many."""
        orphans = await self.routing.orphaned_queued()
        for conversation_id in orphans:
            conversation = await self.store.get_conversation(conversation_id)
            customer = await self.store.get_customer(conversation.customer_id)
            for hook in self.on_orphan:
                await hook(customer, conversation)
        if orphans:
            log.info("routing: %d queued conversations without an entry queued again",
                     len(orphans))  # fmt: skip
        return len(orphans)

    # --------------------------------------------------------------- changes

    async def apply(self, change: RoutingChange) -> Applied:
        """Commit, then tell the connected consoles."""
        applied = await self.routing.apply(change)
        self.feed.committed(applied.console)
        if self.metrics is not None:
            self.metrics.count_stored(applied.messages)
        return applied

    def _deadline(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.settings.offer_timeout_s)

    async def set_presence(self, rep_id: int, presence: Presence) -> Rep:
        """Change a rep's presence; leaving `available` withdraws their pending offers."""
        async with self.lock:
            withdrawn = (
                [o for o in self.offers.values() if o.rep_id == rep_id]
                if presence is not Presence.AVAILABLE
                else []
            )
            console = [ConsoleEventDraft(kind="presence", rep_id=rep_id,
                                         data={"presence": presence.value})]  # fmt: skip
            console += [
                ConsoleEventDraft(kind="offer.closed", rep_id=rep_id,
                                  data={"offer_id": o.id, "status": "withdrawn"})
                for o in withdrawn
            ]  # fmt: skip
            applied = await self.apply(
                RoutingChange(
                    presence=PresenceUpdate(rep_id=rep_id, status=presence),
                    offers=tuple(OfferUpdate(offer_id=o.id, status=OfferStatus.WITHDRAWN)
                                 for o in withdrawn),
                    console=tuple(console),
                )
            )  # fmt: skip
            for offer in withdrawn:
                self.untrack_offer(offer.id)
            assert applied.rep is not None
            self.reps[rep_id] = applied.rep
            if presence is Presence.AVAILABLE:
                # Someone new to offer to: entries every rep had passed on are tried again.
                self._tried.clear()
        await self._closed(withdrawn, OfferStatus.WITHDRAWN)
        await self.pump()
        return applied.rep

    async def refresh_reps(self) -> int:
        """Read the reps again (one was added, changed or disabled outside this process,
        e.g. by `gateway reps add` while the gateway runs); returns how many were new,
        changed or gone. What this picture holds of them mirrors their rows, so taking
        the rows as they are loses nothing; read under the lock, so no change of ours is
        overwritten. A disabled rep goes offline first (their offers go to others)."""
        async with self.lock:
            listed = {r.id: r for r in await self.routing.list_reps()}
            changed = [r for r in listed.values() if self.reps.get(r.id) != r]
            gone = [rep_id for rep_id in self.reps if rep_id not in listed]
            for rep in changed:
                self.reps[rep.id] = rep
        for rep_id in gone:
            if self.reps[rep_id].presence is not Presence.OFFLINE:
                await self.set_presence(rep_id, Presence.OFFLINE)
            self.reps.pop(rep_id, None)
        if changed or gone:
            log.info("routing: reps %s added or changed, %s disabled",
                     ", ".join(r.username for r in changed) or "none",
                     len(gone))  # fmt: skip
            await self.pump()  # new skills or capacity may match waiting work
        return len(changed) + len(gone)

    # -------------------------------------------------------------- matching

    async def pump(self) -> int:
        """Offer waiting entries to eligible reps until nothing more matches."""
        made = 0
        async with self.lock:
            while (match := self._next_match()) is not None:
                entry, rep = match
                offer_draft = OfferDraft(
                    entry_id=entry.id,
                    rep_id=rep.id,
                    expires_at=self._deadline(),
                    announce=self.offer_data(entry),
                )
                applied = await self.apply(RoutingChange(new_offer=offer_draft))
                assert applied.offer is not None
                offer = applied.offer
                self.track_offer(offer)
                made += 1
                for hook in self.on_offer:
                    await hook(offer, entry)
        return made

    # ---------------------------------------------------------------- offers

    def track_offer(self, offer: Offer) -> None:
        self.offers[offer.id] = offer
        self._offer_of[offer.entry_id] = offer.id
        self._tried[offer.entry_id].add(offer.rep_id)
        delay = max((offer.expires_at - datetime.now(UTC)).total_seconds(), 0.0)
        self._timers[offer.id] = asyncio.get_running_loop().call_later(
            delay, self._expire_soon, offer.id
        )

    def untrack_offer(self, offer_id: int) -> Offer | None:
        offer = self.offers.pop(offer_id, None)
        self.phone_offers.discard(offer_id)
        if offer is not None:
            self._offer_of.pop(offer.entry_id, None)
        timer = self._timers.pop(offer_id, None)
        if timer is not None:
            timer.cancel()
        return offer

    def _expire_soon(self, offer_id: int) -> None:
        async def run() -> None:
            try:
                await self.expire(offer_id)
            except Exception:
                log.exception("expiring offer %s failed", offer_id)

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------ offer decisions

    def pending_offer(self, rep_id: int, offer_id: int) -> tuple[Offer, QueueEntry]:
        offer = self.offers.get(offer_id)
        if offer is None or offer.rep_id != rep_id:
            raise RoutingError(f"offer {offer_id} is not pending for you")
        return offer, self.waiting[offer.entry_id]

    async def expire(self, offer_id: int) -> None:
        """The accept timeout: the offer goes to the next rep."""
        await self.refuse(None, offer_id, OfferStatus.EXPIRED)

    async def refuse(self, rep_id: int | None, offer_id: int, status: OfferStatus) -> None:
        """A rep declined (or the offer expired): try the next rep. A transfer aimed at
        one rep fails instead, and the rep who asked for it is told."""
        async with self.lock:
            offer = self.offers.get(offer_id)
            if offer is None or (rep_id is not None and offer.rep_id != rep_id):
                if rep_id is None:
                    return
                raise RoutingError(f"offer {offer_id} is not pending for you")
            entry = self.waiting[offer.entry_id]
            closed = {"offer_id": offer.id, "status": status.value}
            console = [ConsoleEventDraft(kind="offer.closed", rep_id=offer.rep_id, data=closed)]
            entries: tuple[EntryUpdate, ...] = ()
            failed = entry.target_rep_id is not None
            if failed:
                entries = (EntryUpdate(entry_id=entry.id, ended=True, outcome=Outcome.FAILED),)
                console.append(
                    ConsoleEventDraft(kind="transfer.failed", rep_id=entry.from_rep_id,
                                      data={"conversation_id": entry.conversation_id,
                                            "to_rep_id": entry.target_rep_id,
                                            "reason": status.value})
                )  # fmt: skip
            await self.apply(
                RoutingChange(
                    offers=(OfferUpdate(offer_id=offer.id, status=status),),
                    entries=entries,
                    console=tuple(console),
                )
            )
            self.untrack_offer(offer.id)
            if failed:
                self.take_waiting(entry.id)
            else:
                # Every rep may have passed on it by now: after one more accept timeout the
                # entry starts a new round, so nobody is left waiting for ever.
                self._rounds[entry.id] = asyncio.get_running_loop().call_later(
                    self.settings.offer_timeout_s, self._spawn_new_round, entry.id
                )
        await self._closed([offer], status)
        await self.pump()

    async def _closed(self, offers: Iterable[Offer], status: OfferStatus) -> None:
        """(Outside the lock) tell `on_offer_closed` of offers that ended unaccepted."""
        for offer in offers:
            for hook in self.on_offer_closed:
                try:
                    await hook(offer, status)
                except Exception:  # the offer is closed either way; a hook never undoes it
                    log.exception("an on_offer_closed hook failed for offer %s", offer.id)

    def _spawn_new_round(self, entry_id: int) -> None:
        self._rounds.pop(entry_id, None)

        async def run() -> None:
            if entry_id in self.waiting and entry_id not in self._offer_of:
                self._tried.pop(entry_id, None)
                try:
                    await self.pump()
                except Exception:
                    log.exception("a new offer round for entry %s failed", entry_id)

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def withdraw_offers_for(self, entry_id: int) -> list[OfferUpdate]:
        """(Under the lock) the entry's pending offer, to withdraw in a change."""
        offer_id = self._offer_of.get(entry_id)
        if offer_id is None:
            return []
        self.untrack_offer(offer_id)
        return [OfferUpdate(offer_id=offer_id, status=OfferStatus.WITHDRAWN)]


__all__ = ["Router", "RoutingError"]
