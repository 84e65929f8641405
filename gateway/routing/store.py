"""`RoutingStore`: the narrow seam between routing and durable storage.

Separate from `gateway.protocols.Store` (SQLite: store/sqlite_routing.py,
PostgreSQL: store/pg_routing.py). Every routing step is one
`RoutingChange` applied in one transaction: the conversation's state, the
queue entry, the offer and the console events it produces commit together,
before the step is acknowledged to anyone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from pydantic import Field

from gateway.models import Conversation, ConversationState, Frozen, Message
from gateway.protocols import EventDraft, OutboundDraft
from gateway.routing.models import (
    ConsoleEvent,
    ConsoleEventDraft,
    Offer,
    OfferStatus,
    Outcome,
    Presence,
    QueueEntry,
    Rep,
    RepChanges,
    RepCredentials,
    RepDraft,
    Session,
    WorkKind,
)


class EntryDraft(Frozen):
    conversation_id: int
    queue: str
    kind: WorkKind
    priority: int
    from_rep_id: int | None = None
    target_rep_id: int | None = None
    note: str | None = None


class EntryUpdate(Frozen):
    entry_id: int
    rep_id: int | None = None  # set: the rep who took it (assigned now)
    outcome: Outcome | None = None  # set with ended: how it ended
    ended: bool = False


class OfferDraft(Frozen):
    entry_id: int  # 0: the entry created by the same change
    rep_id: int
    expires_at: datetime
    # Set: an `offer` console event for the rep, this data plus `offer_id`, `expires_at`
    # (written in the same transaction as the offer, so no offer goes unannounced).
    announce: dict[str, Any] | None = None


class OfferUpdate(Frozen):
    offer_id: int
    status: OfferStatus
    expires_at: datetime | None = None  # re-issued: a new deadline, status stays pending


class PresenceUpdate(Frozen):
    rep_id: int
    status: Presence | None = None
    busy: bool = False  # the rep just took a conversation (least-recently-busy order)


class DispositionDraft(Frozen):
    rep_id: int
    code: str = Field(min_length=1, max_length=60)
    note: str | None = None


class RoutingChange(Frozen):
    """Everything one routing step changes, written in one transaction."""

    conversation_id: int | None = None
    state: ConversationState | None = None
    queue: str | None = None
    outbound: tuple[OutboundDraft, ...] = ()
    events: tuple[EventDraft, ...] = ()  # the conversation's audit log
    new_entry: EntryDraft | None = None
    entries: tuple[EntryUpdate, ...] = ()
    new_offer: OfferDraft | None = None
    offers: tuple[OfferUpdate, ...] = ()
    presence: PresenceUpdate | None = None
    disposition: DispositionDraft | None = None
    rating_request: bool = False  # the closed conversation awaits its rating
    console: tuple[ConsoleEventDraft, ...] = ()


class Applied(Frozen):
    conversation: Conversation | None = None
    messages: tuple[Message, ...] = ()
    entry: QueueEntry | None = None  # the new entry
    offer: Offer | None = None  # the new offer
    rep: Rep | None = None  # after a presence update
    console: tuple[ConsoleEvent, ...] = ()


class RatingTarget(Frozen):
    conversation_id: int
    customer_id: int
    channel: str
    score: int | None = None


class RoutingStore(Protocol):
    """Durable routing state. Every write is committed before its coroutine returns."""

    async def add_rep(self, draft: RepDraft) -> Rep:
        """ConflictError when the username is taken."""
        ...

    async def update_rep(self, username: str, changes: RepChanges) -> Rep:
        """NotFoundError when there is no such rep (disabled ones included: `disabled`
        False enables them again). Disabling or a new password revokes their sessions."""
        ...

    async def list_reps(self, *, include_disabled: bool = False) -> list[Rep]:
        """Enabled reps (and disabled ones when asked), by id."""
        ...

    async def credentials(self, username: str) -> RepCredentials | None: ...

    async def apply(self, change: RoutingChange) -> Applied: ...

    async def open_entries(self) -> list[QueueEntry]:
        """Entries not ended (waiting, being offered or held), oldest first."""
        ...

    async def pending_offers(self) -> list[Offer]: ...

    async def orphaned_queued(self) -> list[int]:
        """Conversations `queued` without an open queue entry (the handover that would
        have made one never ran: a node died between the turn and the hook)."""
        ...

    async def handle_times(self, limit: int) -> list[float]:
        """Seconds between assignment and end of the latest `limit` finished entries."""
        ...

    async def console_events(
        self, rep_id: int, queues: tuple[str, ...], after: int, limit: int
    ) -> list[ConsoleEvent]:
        """Events after `after` that `rep_id` may see (its own, its queues', everyone's)."""
        ...

    async def console_since(self, after: int, limit: int) -> list[ConsoleEvent]:
        """Every console event after `after`, in order (fanned out to other nodes)."""
        ...

    async def last_console_seq(self) -> int: ...

    async def conversations_awaiting(self, opened: str, closed: str) -> list[int]:
        """Conversations with more `opened` events than `closed` ones in their audit log
        (approvals requested and not yet decided), oldest first."""
        ...

    async def prune_console(self, before: datetime) -> int:
        """Delete console events older than `before` (they only serve reconnects)."""
        ...

    async def create_session(self, session: Session) -> None: ...

    async def get_session(self, session_id: str) -> Session | None:
        """A session not revoked (expiry is the caller's to check)."""
        ...

    async def revoke_session(self, session_id: str) -> None: ...

    async def rate(self, conversation_id: int, score: int) -> RatingTarget | None:
        """Record the rating of a conversation that asked for one; None if it did not.
        A second rating replaces the first."""
        ...

    async def pending_rating(self, customer_id: int, since: datetime) -> RatingTarget | None:
        """The customer's latest conversation closed since `since` that awaits a rating."""
        ...


__all__ = [
    "Applied",
    "DispositionDraft",
    "EntryDraft",
    "EntryUpdate",
    "OfferDraft",
    "OfferUpdate",
    "PresenceUpdate",
    "RatingTarget",
    "RoutingChange",
    "RoutingStore",
]
