"""`DeskOrgStore`: labels on conversations, teams of reps and the queues' SLA targets
set in the console (part of `DeskStore`; SQL in store/desk_org_sql.py, one text for
SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

from pydantic import Field

from gateway.models import Frozen

LABEL_ADDED = "label.added"
LABEL_REMOVED = "label.removed"


class Label(Frozen):
    id: int
    name: str = Field(min_length=1, max_length=50)
    colour: str | None = Field(default=None, pattern=r"^#[0-9a-fA-F]{6}$")


class Team(Frozen):
    id: int
    name: str
    rep_ids: tuple[int, ...] = ()


class QueueTargets(Frozen):
    """A queue's SLA targets in seconds (None: no target)."""

    queue: str = Field(min_length=1, max_length=50)
    first_response_s: float | None = Field(default=None, gt=0)
    next_response_s: float | None = Field(default=None, gt=0)
    resolution_s: float | None = Field(default=None, gt=0)


class ReplyTimes(NamedTuple):
    """What an item's SLA timers need of its conversation (ms since the epoch)."""

    created_at: int
    first_rep: int | None  # the first reply a rep wrote since the handover
    last_rep: int | None  # the latest one
    last_customer: int | None  # the customer's latest message since the handover


class DeskOrgStore(Protocol):
    async def labels(self) -> list[Label]:
        """Every label, by name."""
        ...

    async def add_label(self, name: str, colour: str | None) -> Label:
        """ConflictError when the name is taken."""
        ...

    async def update_label(self, label_id: int, name: str, colour: str | None) -> Label:
        """NotFoundError without it; ConflictError when the name is taken."""
        ...

    async def delete_label(self, label_id: int) -> bool:
        """Removes it from every conversation too (their events stay)."""
        ...

    async def conversation_labels(self, conversation_id: int) -> list[Label]: ...

    async def labels_of(self, conversation_ids: Sequence[int]) -> dict[int, list[str]]:
        """Label names of each conversation that has any."""
        ...

    async def label_conversation(
        self, conversation_id: int, label_id: int, rep_id: int, *, on: bool
    ) -> bool:
        """Add (`on`) or remove a label, recording `label.added` / `label.removed` in
        the conversation's events in the same transaction. False when nothing changed;
        NotFoundError without such a label or conversation."""
        ...

    async def teams(self) -> list[Team]:
        """Every team with its reps, by name."""
        ...

    async def add_team(self, name: str) -> Team:
        """ConflictError when the name is taken."""
        ...

    async def rename_team(self, team_id: int, name: str) -> Team:
        """NotFoundError without it; ConflictError when the name is taken."""
        ...

    async def delete_team(self, team_id: int) -> bool:
        """Its reps are in no team afterwards."""
        ...

    async def set_team(self, rep_id: int, team_id: int | None) -> None:
        """Put the rep in the team (out of any other), or in none. NotFoundError
        without such a rep or team."""
        ...

    async def team_rep_ids(self, team_name: str) -> list[int]:
        """The ids of the team's reps (none for an unknown team), ascending."""
        ...

    async def queue_targets(self) -> list[QueueTargets]:
        """The targets set in the console, by queue (queues not set: none)."""
        ...

    async def set_queue_targets(self, targets: QueueTargets, rep_id: int) -> None: ...

    async def clear_queue_targets(self, queue: str) -> bool:
        """Back to the settings' defaults."""
        ...

    async def reply_times(self, since: Sequence[tuple[int, int]]) -> dict[int, ReplyTimes]:
        """For each (conversation id, handover ms): its start, and its rep replies and
        customer messages since the handover."""
        ...


__all__ = [
    "LABEL_ADDED", "LABEL_REMOVED", "DeskOrgStore", "Label", "QueueTargets", "ReplyTimes",
    "Team",
]  # fmt: skip
