"""Which waiting conversation goes to which rep next: a pure function of the router's
picture, so the rule is read (and tested) in one place."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import UTC, datetime

from gateway.routing import policy
from gateway.routing.models import Presence, QueueEntry, Rep, WorkKind


def next_match(
    *,
    reps: Iterable[Rep],
    waiting: Iterable[QueueEntry],
    loads: Mapping[tuple[int, WorkKind], int],
    capacity: Callable[[Rep, WorkKind], int],
    queues: Mapping[str, list[str]],
    tried: Mapping[int, set[int]],
    now: datetime | None = None,
) -> tuple[QueueEntry, Rep] | None:
    """The highest-priority waiting entry (aged by its wait) that an eligible rep can take,
    with the least recently busy such rep. Eligible: available, spare capacity for the
    entry's kind of work, the queue's skills (or the rep a transfer names), not tried for
    this entry yet, not the rep handing it over."""
    free = [r for r in reps if r.presence is Presence.AVAILABLE]
    if not free:
        return None
    spare = {
        kind: [r for r in free if loads.get((r.id, kind), 0) < capacity(r, kind)]
        for kind in WorkKind
    }
    if not spare[WorkKind.TEXT] and not spare[WorkKind.CALL]:
        return None
    # Reps with spare capacity who serve each (queue, kind): entries of a queue nobody
    # can take now are skipped without being sorted (a long queue costs little).
    pools: dict[tuple[str, WorkKind], list[Rep]] = {}

    def pool(entry: QueueEntry) -> list[Rep]:
        key = (entry.queue, entry.kind)
        if key not in pools:
            skills = queues.get(entry.queue, [entry.queue])
            pools[key] = [r for r in spare[entry.kind] if policy.can_serve(r.skills, skills)]
        return pools[key]

    at = now or datetime.now(UTC)
    candidates = sorted(
        (e for e in waiting if e.target_rep_id is not None or pool(e)),
        key=lambda e: (
            -policy.effective_priority(e.priority, (at - e.enqueued_at).total_seconds()),
            e.id,
        ),
    )
    for entry in candidates:
        takers = (
            [r for r in spare[entry.kind] if r.id == entry.target_rep_id]
            if entry.target_rep_id is not None
            else pool(entry)
        )
        passed = tried.get(entry.id, set())
        eligible = [r for r in takers if r.id not in passed and r.id != entry.from_rep_id]
        if eligible:
            return entry, min(eligible, key=lambda r: (_ts(r.last_busy_at), r.id))
    return None


def ranked_takers(
    entry: QueueEntry,
    *,
    reps: Iterable[Rep],
    loads: Mapping[tuple[int, WorkKind], int],
    capacity: Callable[[Rep, WorkKind], int],
    queues: Mapping[str, list[str]],
    passed: Collection[int] = (),
) -> list[Rep]:
    """Every rep who could be offered `entry` now, best first: the rule of `next_match`
    (available, spare capacity for its kind of work, the queue's skills, not passed
    over yet), ordered least recently busy first. A call's warm transfer rings them
    in this order (routing/calls.py)."""
    skills = queues.get(entry.queue, [entry.queue])
    eligible = [
        r
        for r in reps
        if r.presence is Presence.AVAILABLE
        and loads.get((r.id, entry.kind), 0) < capacity(r, entry.kind)
        and policy.can_serve(r.skills, skills)
        and r.id not in passed
        and r.id != entry.from_rep_id
    ]
    return sorted(eligible, key=lambda r: (_ts(r.last_busy_at), r.id))


def _ts(value: datetime | None) -> float:
    return value.timestamp() if value is not None else 0.0
