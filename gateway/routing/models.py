"""Records of the routing layer: reps, presence, queue entries, offers, console events."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from pydantic import Field

from gateway.models import ChannelKind, Frozen


class Presence(enum.StrEnum):
    AVAILABLE = "available"
    AWAY = "away"
    OFFLINE = "offline"


class WorkKind(enum.StrEnum):
    """Capacity is counted separately for calls and for text conversations."""

    TEXT = "text"
    CALL = "call"

    @classmethod
    def of(cls, channel: ChannelKind) -> WorkKind:
        return cls.CALL if channel is ChannelKind.PHONE else cls.TEXT


class OfferStatus(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"  # the conversation left the queue meanwhile


class Outcome(enum.StrEnum):
    """How a queue entry ended."""

    ASSIGNED = "assigned"  # still held (an open entry with a rep)
    HANDED_BACK = "handed_back"
    CLOSED = "closed"
    TRANSFERRED = "transferred"
    FAILED = "failed"  # a transfer to one rep was declined or timed out
    LEFT = "left"  # the conversation left the queue (closed elsewhere)


class Role(enum.StrEnum):
    """What a console user may do: a rep works conversations; a supervisor (a lead) also
    reads every conversation and the reports; an admin also manages reps and API tokens."""

    REP = "rep"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"

    @property
    def supervises(self) -> bool:
        return self is not Role.REP


class RepDraft(Frozen):
    username: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")
    display_name: str = Field(min_length=1, max_length=200)
    password_hash: str = Field(repr=False)
    skills: tuple[str, ...] = ()
    phone: str | None = None
    max_text: int | None = Field(default=None, ge=0, le=50)
    max_calls: int | None = Field(default=None, ge=0, le=5)
    role: Role = Role.REP


class RepChanges(Frozen):
    """What `gateway reps update` (or an admin in the console) changes: None leaves a
    field as it is; a phone of "" removes the rep's number; `disabled` True disables the
    rep (their sessions end, they can no longer log in), False enables them again."""

    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    skills: tuple[str, ...] | None = None
    phone: str | None = None
    max_text: int | None = Field(default=None, ge=0, le=50)
    max_calls: int | None = Field(default=None, ge=0, le=5)
    role: Role | None = None
    password_hash: str | None = Field(default=None, repr=False)
    disabled: bool | None = None


class Rep(Frozen):
    id: int
    username: str
    display_name: str
    skills: tuple[str, ...] = ()
    phone: str | None = None
    max_text: int | None = None
    max_calls: int | None = None
    presence: Presence = Presence.OFFLINE
    last_busy_at: datetime | None = None
    created_at: datetime
    role: Role = Role.REP
    disabled: bool = False


class RepCredentials(Frozen):
    rep_id: int
    password_hash: str = Field(repr=False)
    disabled: bool = False


class QueueEntry(Frozen):
    """One stay of a conversation in a queue (or a warm transfer waiting for its taker)."""

    id: int
    conversation_id: int
    queue: str
    kind: WorkKind
    priority: int
    from_rep_id: int | None = None
    target_rep_id: int | None = None
    note: str | None = None
    rep_id: int | None = None
    enqueued_at: datetime
    assigned_at: datetime | None = None
    ended_at: datetime | None = None
    outcome: Outcome | None = None


class Offer(Frozen):
    id: int
    entry_id: int
    rep_id: int
    status: OfferStatus
    created_at: datetime
    expires_at: datetime


class ConsoleEvent(Frozen):
    """One live update for consoles, numbered globally so a console resumes after `seq`."""

    seq: int
    rep_id: int | None = None  # only this rep
    queue: str | None = None  # only reps who may serve this queue (when rep_id is None)
    kind: str
    data: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime


class ConsoleEventDraft(Frozen):
    kind: str
    rep_id: int | None = None
    queue: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class Session(Frozen):
    """A logged-in console session."""

    id: str  # the hash of the cookie's secret id
    rep_id: int
    csrf: str
    expires_at: datetime


class CallTarget(Frozen):
    """A rep a call's warm transfer rings: the offer their phone stands for."""

    rep_id: int
    name: str
    phone: str  # E.164, from the rep's profile
    offer_id: int | None = None  # None in a preview (nothing is offered yet)


class CallNext(Frozen):
    """Routing's answer to a call's transfer asking whom to ring next."""

    target: CallTarget | None = None  # None: no rep is eligible now
    held_by: int | None = None  # a rep holds it already: only their phone rings (`target`)


class OfferClosed(Frozen):
    """News for a call's transfer: the offer its current rep's phone stands for ended
    in routing (declined in the console, withdrawn, past its deadline)."""

    transfer_id: str
    conversation_id: int
    offer_id: int
    status: OfferStatus
