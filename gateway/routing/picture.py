"""The router's in-memory picture of routing, and what it answers.

Reps, waiting and held queue entries, pending offers, and what each entry was
offered to already: the `Router` (routing/router.py) rebuilds the picture from
the `RoutingStore` on start and changes it, under its lock, only after the store
has committed the change. Everything here reads the picture or edits it in
memory; nothing here commits, waits or takes the lock.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from gateway.routing import matching, policy
from gateway.routing.models import (
    ConsoleEventDraft,
    Offer,
    Presence,
    QueueEntry,
    Rep,
    WorkKind,
)
from gateway.settings import Settings


class RoutingPicture:
    """Reps, queue entries and pending offers as the router last committed them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.queues = settings.queues
        self.reps: dict[int, Rep] = {}
        self.waiting: dict[int, QueueEntry] = {}  # entry id -> entry without a rep
        self.held: dict[int, QueueEntry] = {}  # conversation id -> entry with its rep
        self.customer_of: dict[int, int] = {}  # held conversation id -> its customer
        self.offers: dict[int, Offer] = {}  # pending offers by id
        self._offer_of: dict[int, int] = {}  # entry id -> its pending offer id
        self._tried: dict[int, set[int]] = collections.defaultdict(set)
        self.handle_times: collections.deque[float] = collections.deque(maxlen=50)
        self.claimed: set[int] = set()  # conversations a call's transfer offers by phone
        self.phone_offers: set[int] = set()  # pending offers that ring the rep's phone
        self.wrap_up: set[int] = set()  # held conversations whose call is over

    # ----------------------------------------------------------------- views

    def queue_sizes(self) -> dict[str, int]:
        sizes = dict.fromkeys(self.queues, 0)
        for entry in self.waiting.values():
            sizes[entry.queue] = sizes.get(entry.queue, 0) + 1
        return sizes

    def rep_queues(self, rep: Rep) -> tuple[str, ...]:
        return tuple(q for q, skills in self.queues.items() if policy.can_serve(rep.skills, skills))

    def held_for_customer(self, customer_id: int) -> QueueEntry | None:
        """The held entry of a customer's conversation, if a rep holds one."""
        for conv_id, cust in self.customer_of.items():
            if cust == customer_id and conv_id in self.held:
                return self.held[conv_id]
        return None

    def queue_for(self, name: str | None) -> str:
        """A configured queue: `name`, else `general`, else the first."""
        if name in self.queues:
            return name
        return "general" if "general" in self.queues else next(iter(self.queues))

    def capacity(self, rep: Rep, kind: WorkKind) -> int:
        if kind is WorkKind.CALL:
            return rep.max_calls if rep.max_calls is not None else self.settings.rep_max_calls
        return rep.max_text if rep.max_text is not None else self.settings.rep_max_text

    def load(self, rep_id: int, kind: WorkKind) -> int:
        return self.loads().get((rep_id, kind), 0)

    def loads(self) -> collections.Counter[tuple[int, WorkKind]]:
        """(rep, kind of work) -> conversations held plus offers pending."""
        loads: collections.Counter[tuple[int, WorkKind]] = collections.Counter()
        for e in self.held.values():
            if e.rep_id is not None and e.conversation_id not in self.wrap_up:
                loads[e.rep_id, e.kind] += 1
        for o in self.offers.values():
            loads[o.rep_id, self.waiting[o.entry_id].kind] += 1
        return loads

    def staffed(self, queue: str) -> int:
        """Reps online (available or away) who serve `queue`."""
        skills = self.queues.get(queue, [queue])
        return sum(
            1
            for r in self.reps.values()
            if r.presence is not Presence.OFFLINE and policy.can_serve(r.skills, skills)
        )

    def available_for(self, queue: str) -> bool:
        skills = self.queues.get(queue, [queue])
        return any(
            r.presence is Presence.AVAILABLE and policy.can_serve(r.skills, skills)
            for r in self.reps.values()
        )

    def estimate_wait(self, queue: str, ahead: int) -> float | None:
        return policy.estimate_wait_s(list(self.handle_times), ahead, self.staffed(queue))

    def size_event(self, queue: str, delta: int = 0) -> ConsoleEventDraft:
        """`queue.size` for consoles; `delta` counts a change not applied in memory yet."""
        waiting = sum(1 for e in self.waiting.values() if e.queue == queue) + delta
        return ConsoleEventDraft(kind="queue.size", queue=queue,
                                 data={"queue": queue, "waiting": max(waiting, 0)})  # fmt: skip

    def entries_of(self, conversation_id: int) -> Iterable[QueueEntry]:
        return [e for e in self.waiting.values() if e.conversation_id == conversation_id]

    def _next_match(self) -> tuple[QueueEntry, Rep] | None:
        return matching.next_match(
            reps=self.reps.values(),
            waiting=(
                e
                for e in self.waiting.values()
                if e.id not in self._offer_of and e.conversation_id not in self.claimed
            ),
            loads=self.loads(),
            capacity=self.capacity,
            queues=self.queues,
            tried=self._tried,
        )

    def _offer_event(self, offer: Offer, entry: QueueEntry) -> ConsoleEventDraft:
        data = {
            **self.offer_data(entry),
            "offer_id": offer.id,
            "expires_at": offer.expires_at.isoformat(),
        }
        return ConsoleEventDraft(kind="offer", rep_id=offer.rep_id, data=data)

    def offer_data(self, entry: QueueEntry) -> dict[str, Any]:
        """What a console shows of an offer (the store adds its id and deadline)."""
        return {
            "entry_id": entry.id,
            "conversation_id": entry.conversation_id,
            "queue": entry.queue,
            "kind": entry.kind.value,
            "priority": entry.priority,
            "note": entry.note,
            "from_rep_id": entry.from_rep_id,
        }

    def offer_of(self, entry_id: int) -> int | None:
        """The id of the entry's pending offer, if it has one."""
        return self._offer_of.get(entry_id)

    # ------------------------------------------------------- in-memory edits

    def add_waiting(self, entry: QueueEntry) -> None:
        self.waiting[entry.id] = entry

    def take_waiting(self, entry_id: int) -> QueueEntry | None:
        self._tried.pop(entry_id, None)
        return self.waiting.pop(entry_id, None)

    def note_handle_time(self, entry: QueueEntry) -> None:
        if entry.assigned_at is not None:
            self.handle_times.append((datetime.now(UTC) - entry.assigned_at).total_seconds())

    def add_rep(self, rep: Rep) -> None:
        self.reps[rep.id] = rep


__all__ = ["RoutingPicture"]
