"""`DeskStore`: what rep admin, API tokens, conversation access and reports read and
write (SQLite: store/sqlite_desk.py, PostgreSQL: store/pg_desk.py; one SQL text for
both, store/desk_sql.py)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple, Protocol

from pydantic import Field

from gateway.desk.org_store import DeskOrgStore
from gateway.models import ChannelKind, ConversationState, Frozen
from gateway.routing.models import Rep

if TYPE_CHECKING:
    from gateway.desk.cost import UsageRead
    from gateway.desk.extras import ReportReads
    from gateway.desk.facts import FactColumns
    from gateway.desk.gaps import HandoverQuestion


class ApiToken(Frozen):
    """An API token an admin created (the token itself is shown once, never stored)."""

    id: int
    name: str
    created_by: int | None = None
    created_at: datetime
    revoked_at: datetime | None = None


class ConversationFacts(NamedTuple):
    """What the reports need of one conversation (times: ms since the epoch). A tuple,
    not a model: a report reads 100,000 of them."""

    id: int
    channel: str
    state: str
    queue: str | None
    created_at: int
    closed_at: int | None
    handover_at: int | None  # the first `handover` event
    resolved_at: int | None  # the first `conversation.resolved` event (the agent's)
    resolved_how: str | None  # its `how`: confirmed | assumed
    rep_reply_at: int | None  # the first reply a rep wrote
    score: int | None  # the customer's rating, 1-5
    queue_wait_ms: int | None = None  # its first wait in a queue until a rep took it
    handle_ms: int | None = None  # the sum of its finished stretches held by reps
    # Each next response: (the customer's first message awaiting a rep, the rep's reply).
    next_responses: tuple[tuple[int, int], ...] = ()


class Canned(Frozen):
    """A canned response: text with variables ({first_name}, {order}, {rep_name})."""

    id: int
    name: str
    text: str


class SearchQuery(Frozen):
    """The desk's conversation search: every given filter must match (closed ones too)."""

    text: str | None = Field(default=None, max_length=200)  # words in any message
    customer: str | None = Field(default=None, max_length=200)  # name part, or an identity
    customer_id: int | None = None
    channel: ChannelKind | None = None
    state: ConversationState | None = None
    queue: str | None = Field(default=None, max_length=50)
    since: datetime | None = None  # started at or after
    until: datetime | None = None  # started before
    worked_by: int | None = None  # only conversations this rep took (a rep's own search)
    label: str | None = Field(default=None, max_length=50)  # with this label (by name)
    limit: int = Field(default=50, ge=1, le=200)


class ConversationHit(Frozen):
    id: int
    customer_id: int
    customer: str | None = None
    channel: ChannelKind
    state: ConversationState
    queue: str | None = None
    created_at: datetime
    closed_at: datetime | None = None
    labels: tuple[str, ...] = ()  # their names (the search adds them: `labels_of`)


class DeskStore(DeskOrgStore, Protocol):
    async def get_rep(self, rep_id: int) -> Rep | None:
        """The rep (disabled ones too), or None."""
        ...

    async def canned(self) -> list[Canned]:
        """Every canned response, by name."""
        ...

    async def add_canned(self, name: str, text: str, created_by: int) -> Canned:
        """ConflictError when the name is taken."""
        ...

    async def delete_canned(self, canned_id: int) -> bool: ...

    async def ratings_of(self, customer_id: int) -> list[tuple[int, int]]:
        """(conversation id, score) of the customer's rated conversations, newest first."""
        ...

    async def open_conversation_of(self, customer_id: int) -> int | None:
        """The customer's conversation that is not closed, if any."""
        ...

    async def worked_on(self, rep_id: int, conversation_id: int) -> bool:
        """Whether the rep ever took the conversation (held it from a queue entry)."""
        ...

    async def add_token(self, name: str, token_hash: str, created_by: int | None) -> ApiToken: ...

    async def tokens(self) -> list[ApiToken]:
        """Every token, newest first (revoked ones too)."""
        ...

    async def revoke_token(self, token_id: int) -> bool:
        """False when there is no such live token."""
        ...

    async def token_by_hash(self, token_hash: str) -> ApiToken | None:
        """The live (not revoked) token with this SHA-256, or None."""
        ...

    async def facts(
        self, since: datetime, until: datetime, *, channels: set[str] | None = None,
        queues: set[str] | None = None, rep_ids: set[int] | None = None,
    ) -> FactColumns:  # fmt: skip
        """Conversations created in [since, until), with what reports count of them (from
        `report_facts`, one snapshot), a column each. Each filter given narrows them: on one of
        `channels`, in one of `queues`, worked by (taken by) one of `rep_ids`; an empty
        set matches nothing."""
        ...

    async def search(self, query: SearchQuery) -> list[ConversationHit]:
        """Matching conversations, newest first, at most `query.limit`; the text is
        searched with the store's full-text engine (SQLite FTS5, PostgreSQL tsvector)."""
        ...

    async def usage(self, first_id: int, last_id: int, prices: Sequence[float] = ()) -> UsageRead:
        """The usage of the conversations with ids in [first_id, last_id]: summed, each
        conversation's usage priced at `prices` (per unit of each usage column, in
        ConversationUsage's order; none given: 0), and their reps' handling time."""
        ...

    async def handover_questions(
        self, since: datetime, until: datetime, limit: int
    ) -> list[HandoverQuestion]:
        """The handovers of the conversations created in [since, until), latest
        first (at most `limit`), each with the customer's last message before it."""
        ...

    async def report_reads(
        self, since: datetime, until: datetime, *, channels: set[str] | None = None,
        queues: set[str] | None = None, rep_ids: set[int] | None = None,
        target_queues: Collection[str] = (), prices: Sequence[float] = (),
    ) -> ReportReads:  # fmt: skip
        """What the summary reads (`facts`, the extra figures' GROUP BY reads of
        gateway/store/extras_sql.py, and `usage` of exactly the conversations `facts` selects)
        as of one snapshot of the database, so its figures agree with each other even
        while conversations are being written; next-response waits of `target_queues`
        only, usage priced at `prices`."""
        ...


__all__ = ["ApiToken", "Canned", "ConversationFacts", "ConversationHit", "DeskStore", "SearchQuery"]
