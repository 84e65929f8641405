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

`TransferTargets` is the seam to routing: who to ring for a conversation, in
order. `ConfiguredTargets` is the stand-alone implementation from
GATEWAY_TRANSFER_NUMBERS.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from gateway.models import Conversation, Frozen
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

    rep_id: str
    name: str
    phone: str  # E.164


class TransferTargets(Protocol):
    """Who to ring for a conversation handed over on a call, best first."""

    async def candidates(self, conversation: Conversation) -> Sequence[RepContact]: ...


class ConfiguredTargets:
    """`TransferTargets` from GATEWAY_TRANSFER_NUMBERS: the numbers of the
    conversation's queue, then those for every queue (`*`)."""

    def __init__(self, by_queue: Mapping[str, Sequence[str]]) -> None:
        self.by_queue = {queue: tuple(numbers) for queue, numbers in by_queue.items()}

    @classmethod
    def from_settings(cls, settings: Settings) -> ConfiguredTargets | None:
        """None when no number is configured (a transfer then only plays hold audio)."""
        targets = settings.transfer_targets
        return cls(targets) if targets else None

    async def candidates(self, conversation: Conversation) -> Sequence[RepContact]:
        queue = (conversation.queue or "general").lower()
        numbers = dict.fromkeys((*self.by_queue.get(queue, ()), *self.by_queue.get("*", ())))
        return [
            RepContact(rep_id=f"phone:{number}", name=f"{queue} line {index}", phone=number)
            for index, number in enumerate(numbers, start=1)
        ]


@dataclass
class Transfer:
    """One call's warm transfer. Every change happens under `lock` (callbacks race)."""

    id: str
    caller_sid: str
    conversation_id: int
    queue: str
    reps: tuple[RepContact, ...]
    caller_number: str | None = None
    state: TransferState = TransferState.REQUESTED
    attempt: int = 0  # reps tried so far; reps[attempt - 1] is the current one
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
    def rep(self) -> RepContact | None:
        return self.reps[self.attempt - 1] if 0 < self.attempt <= len(self.reps) else None

    def move(self, to: TransferState) -> bool:
        """Go to `to` if the table allows it; False (nothing changes) otherwise."""
        if not self.state.can_go(to):
            return False
        self.state = to
        if to is TransferState.CONNECTED:
            self.connected_at = time.monotonic()
        return True


__all__ = ["ConfiguredTargets", "RepContact", "Transfer", "TransferState", "TransferTargets"]
