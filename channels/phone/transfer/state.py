"""The warm transfer of one call as an explicit state machine, and where reps come from.

    requested ─▶ ringing ─▶ briefing ─▶ connected ─▶ completed
        │           │  ▲        │
        │           │  └────────┘  the rep did not answer, was busy, the call failed
        │           │              or was canceled, or they declined: the next rep
        ▼           ▼
    callback_offered (no rep left)     abandoned (the caller hung up first)
                                       failed (Twilio refused to move the caller)

`TransferState.can_go` is the whole table: a status callback that asks for a
move the table does not have (a duplicate, a retry, one that arrives after a
later one) is logged and ignored by the caller of `Transfer.move`.

`TransferTargets` is the seam to routing: whom to ring next for a call, one rep
at a time, and whether the rep who accepted may have it. `RoutingTargets`
(transfer_routing.py) rings the reps routing offers the call to, then the lines
of `ConfiguredTargets` (GATEWAY_TRANSFER_NUMBERS).
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from gateway.models import Frozen
from gateway.settings import Settings


class TransferState(enum.StrEnum):
    REQUESTED = "requested"  # the agent handed the call over; nothing rang yet
    RINGING = "ringing"  # a rep's phone is ringing (the caller hears hold audio)
    BRIEFING = "briefing"  # the rep answered and hears the spoken brief
    CONNECTED = "connected"  # the rep accepted and joined the caller's conference
    COMPLETED = "completed"  # the connected call is over
    CALLBACK_OFFERED = "callback_offered"  # nobody took it: the caller was offered a callback
    ABANDONED = "abandoned"  # the caller hung up before a rep took the call
    FAILED = "failed"  # the call could not be moved into the conference

    @property
    def final(self) -> bool:
        return not _NEXT[self]

    def can_go(self, to: TransferState) -> bool:
        return to in _NEXT[self]


_S = TransferState
_NEXT: dict[TransferState, frozenset[TransferState]] = {
    _S.REQUESTED: frozenset({_S.RINGING, _S.CALLBACK_OFFERED, _S.ABANDONED, _S.FAILED}),
    # RINGING -> RINGING: this rep failed, the next one rings.
    _S.RINGING: frozenset({_S.RINGING, _S.BRIEFING, _S.CALLBACK_OFFERED, _S.ABANDONED, _S.FAILED}),
    _S.BRIEFING: frozenset(
        {_S.CONNECTED, _S.RINGING, _S.CALLBACK_OFFERED, _S.ABANDONED, _S.FAILED}
    ),
    _S.CONNECTED: frozenset({_S.COMPLETED}),
    _S.COMPLETED: frozenset(),
    _S.CALLBACK_OFFERED: frozenset(),
    _S.ABANDONED: frozenset(),
    _S.FAILED: frozenset(),
}


class RepContact(Frozen):
    """Someone who can take a call: who they are and the number that rings them."""

    rep_id: int | str  # a rep of routing, or `phone:<number>` for a configured line
    name: str
    phone: str  # E.164
    offer_id: int | None = None  # routing's offer this ring stands for (reps only)


class TransferTargets(Protocol):
    """Whom a call's warm transfer rings, one at a time (routing/calls.py for reps)."""

    async def reserve(self, conversation_id: int) -> None:
        """The agent handed the call over; its transfer starts once the hold prompt
        has played. Nobody may take the conversation elsewhere meanwhile."""
        ...

    async def open(self, transfer: Transfer) -> Sequence[RepContact]:
        """The transfer starts: who would be rung now, best first (for its log)."""
        ...

    async def next(self, transfer: Transfer, outcome: str | None) -> RepContact | None:
        """Whom to ring next; `transfer.rep` (if any) did not take it (`outcome`).
        None: nobody is left."""
        ...

    async def take(self, transfer: Transfer) -> bool:
        """`transfer.rep` accepted (pressed 1): whether they may have the call."""
        ...

    async def done(self, conversation_id: int, transfer: Transfer | None) -> None:
        """The transfer is over (`transfer.state` is final), or never started (None)."""
        ...


class ConfiguredTargets:
    """`TransferTargets` from GATEWAY_TRANSFER_NUMBERS: the numbers of the
    conversation's queue, then those for every queue (`*`), each tried once."""

    def __init__(self, by_queue: Mapping[str, Sequence[str]]) -> None:
        self.by_queue = {queue: tuple(numbers) for queue, numbers in by_queue.items()}

    @classmethod
    def from_settings(cls, settings: Settings) -> ConfiguredTargets | None:
        """None when no number is configured."""
        targets = settings.transfer_targets
        return cls(targets) if targets else None

    def lines(self, queue: str) -> list[RepContact]:
        queue = queue.lower()
        numbers = dict.fromkeys((*self.by_queue.get(queue, ()), *self.by_queue.get("*", ())))
        return [
            RepContact(rep_id=f"phone:{number}", name=f"{queue} line {index}", phone=number)
            for index, number in enumerate(numbers, start=1)
        ]

    async def reserve(self, conversation_id: int) -> None:
        return None

    async def open(self, transfer: Transfer) -> Sequence[RepContact]:
        return self.lines(transfer.queue)

    async def next(self, transfer: Transfer, outcome: str | None) -> RepContact | None:
        tried = {contact.rep_id for contact in transfer.tried}
        return next((c for c in self.lines(transfer.queue) if c.rep_id not in tried), None)

    async def take(self, transfer: Transfer) -> bool:
        return True

    async def done(self, conversation_id: int, transfer: Transfer | None) -> None:
        return None


@dataclass
class Transfer:
    """One call's warm transfer. Every change happens under `lock` (callbacks race)."""

    id: str
    caller_sid: str
    conversation_id: int
    queue: str
    caller_number: str | None = None
    state: TransferState = TransferState.REQUESTED
    rep: RepContact | None = None  # the rep rung now (or last)
    tried: list[RepContact] = field(default_factory=list)  # every rep rung, in order
    rep_sid: str | None = None  # the current rep's call
    callback: str | None = None  # once offered: "requested" or "declined"
    started: float = field(default_factory=time.monotonic)
    connected_at: float | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    @property
    def conference(self) -> str:
        return f"transfer-{self.id}"

    @property
    def brief_audio(self) -> str:
        return f"brief-{self.id}"

    @property
    def attempt(self) -> int:
        """Reps tried so far (the current one included)."""
        return len(self.tried)

    def move(self, to: TransferState) -> bool:
        """Go to `to` if the table allows it; False (nothing changes) otherwise."""
        if not self.state.can_go(to):
            return False
        self.state = to
        if to is TransferState.CONNECTED:
            self.connected_at = time.monotonic()
        return True


__all__ = ["ConfiguredTargets", "RepContact", "Transfer", "TransferState", "TransferTargets"]
