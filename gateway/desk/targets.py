"""The SLA policy in force: each queue's targets (set by an admin in the console,
stored; else the settings GATEWAY_SLA_*_S), the business clock and the at-risk share.
Read from the store on every use, so a change made on one node counts on all."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gateway.desk.org_store import DeskOrgStore, QueueTargets
from gateway.desk.sla import BusinessClock
from gateway.settings import Settings

KINDS = ("first_response", "next_response", "resolution")


def defaults(settings: Settings) -> dict[str, QueueTargets]:
    """Every configured queue (and any the SLA settings name) with its settings' targets."""
    names = dict.fromkeys([*settings.queues, *settings.sla_first_response_s,
                           *settings.sla_next_response_s, *settings.sla_resolution_s])  # fmt: skip
    return {
        q: QueueTargets(
            queue=q,
            first_response_s=settings.sla_first_response_s.get(q),
            next_response_s=settings.sla_next_response_s.get(q),
            resolution_s=settings.sla_resolution_s.get(q),
        )
        for q in names
    }


@dataclass(frozen=True)
class SlaPolicy:
    clock: BusinessClock
    targets: dict[str, QueueTargets]
    at_risk_share: float
    set_in_console: frozenset[str] = frozenset()

    def has_targets(self, queue: str) -> bool:
        t = self.targets.get(queue)
        return t is not None and any(getattr(t, f"{k}_s") is not None for k in KINDS)

    def of(self, kind: str) -> dict[str, float]:
        """Queue -> seconds of one kind of target (queues without it left out)."""
        out: dict[str, float] = {}
        for queue, t in self.targets.items():
            value = getattr(t, f"{kind}_s")
            if value is not None:
                out[queue] = value
        return out


def merged(settings: Settings, stored: Iterable[QueueTargets], clock: BusinessClock) -> SlaPolicy:
    """The settings' targets with the stored ones over them (a stored queue's three
    targets replace its defaults, an empty one included: "no target")."""
    targets = defaults(settings)
    console = set()
    for t in stored:
        targets[t.queue] = t
        console.add(t.queue)
    return SlaPolicy(clock, targets, settings.sla_at_risk_share, frozenset(console))


async def current(settings: Settings, store: DeskOrgStore, clock: BusinessClock) -> SlaPolicy:
    return merged(settings, await store.queue_targets(), clock)


__all__ = ["KINDS", "SlaPolicy", "current", "defaults", "merged"]
