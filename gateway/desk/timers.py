"""The SLA timers of the work a rep sees: each item waiting in their queues and each
open conversation held (theirs, or in their queues), with its most urgent running
target, and per queue how many items are at risk or breached.

An item's targets (its queue's, `targets.SlaPolicy`), counted in business hours:
- first response: from its handover (the queue entry) to the first reply a rep wrote;
- next response: once a rep has answered, from the customer's latest message not yet
  answered to the rep's next reply;
- resolution: from the conversation's start to its close.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from gateway.desk.org_store import DeskOrgStore, ReplyTimes
from gateway.desk.sla import SlaState, SlaTimer, timer, worst
from gateway.desk.targets import SlaPolicy
from gateway.routing.models import QueueEntry
from gateway.routing.service import RoutingService


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def item_timers(
    entry: QueueEntry, times: ReplyTimes, policy: SlaPolicy, now: datetime
) -> list[SlaTimer]:
    """Every target of one item (met ones included, `done`)."""
    targets = policy.targets.get(entry.queue)
    if targets is None:
        return []
    share = policy.at_risk_share
    out = []
    if targets.first_response_s is not None:
        done = None if times.first_rep is None else _at(times.first_rep)
        out.append(timer(policy.clock, "first_response", targets.first_response_s,
                         entry.enqueued_at, now, done_at=done, at_risk_share=share))  # fmt: skip
    last_rep, last_customer = times.last_rep, times.last_customer
    if (targets.next_response_s is not None and last_rep is not None
            and last_customer is not None and last_customer > last_rep):  # fmt: skip
        out.append(timer(policy.clock, "next_response", targets.next_response_s,
                         _at(last_customer), now, at_risk_share=share))  # fmt: skip
    if targets.resolution_s is not None:
        out.append(timer(policy.clock, "resolution", targets.resolution_s,
                         _at(times.created_at), now, at_risk_share=share))  # fmt: skip
    return out


def _entries(service: RoutingService, rep_id: int) -> Iterable[QueueEntry]:
    router = service.router
    queues = service.queues_of(rep_id)
    for entry in list(router.waiting.values()):
        if entry.queue in queues or entry.target_rep_id == rep_id:
            yield entry
    for entry in list(router.held.values()):
        if entry.queue in queues or entry.rep_id == rep_id:
            yield entry


async def desk_timers(
    service: RoutingService, store: DeskOrgStore, policy: SlaPolicy, rep_id: int,
    now: datetime,
) -> dict[str, Any]:  # fmt: skip
    """`{"items": {conversation id: timer}, "queues": {queue: {"at_risk", "breached"}}}`
    for the rep's console (items without a running target are left out; queues
    without targets too)."""
    entries = {e.conversation_id: e for e in _entries(service, rep_id)}
    since = [(cid, int(e.enqueued_at.timestamp() * 1000)) for cid, e in entries.items()]
    times = await store.reply_times(since)
    queues = {  # the rep's queues that have a target (the others show no counts)
        q: {"at_risk": 0, "breached": 0} for q in service.queues_of(rep_id) if policy.has_targets(q)
    }
    items: dict[str, Any] = {}
    for cid, entry in entries.items():
        if cid not in times:
            continue
        shown = worst(item_timers(entry, times[cid], policy, now))
        if shown is None:
            continue
        if entry.rep_id in (None, rep_id):  # what this rep's lists show: not others' work
            items[str(cid)] = {**shown.model_dump(mode="json"), "queue": entry.queue}
        counts = queues.setdefault(entry.queue, {"at_risk": 0, "breached": 0})
        if shown.state is not SlaState.OK:
            counts[shown.state.value] += 1
    return {"now": now.isoformat(), "items": items, "queues": queues}


__all__ = ["desk_timers", "item_timers"]
