"""The store's rules, shared by every backend (SQLite, PostgreSQL).

Each backend reads the rows a step needs (under its own locking), asks these
pure functions what to change, and writes that. The decisions (what a turn
changes, whether a delivery status may move, what linking an identity does,
how merged messages are renumbered) therefore live in one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.models import ConversationState, DeliveryStatus, Verification
from gateway.protocols import LinkResult, TurnRecord
from gateway.store.rows import VERIFICATION_RANK, dumps

# ------------------------------------------------------------------ turns


@dataclass(frozen=True, slots=True)
class TurnChanges:
    """What `record_turn` writes to the conversation row, and the event it adds."""

    updates: dict[str, Any]  # column -> new value (version and updated_at always)
    state_event: dict[str, Any] | None  # `state.changed` data when the state moves
    closing: bool  # the conversation closes: it is no longer the customer's open one


def turn_changes(conv: Mapping[str, Any], turn: TurnRecord, ts: int) -> TurnChanges:
    """The conversation columns `turn` changes (the caller has checked the version)."""
    updates: dict[str, Any] = {"version": conv["version"] + 1, "updated_at": ts}
    if turn.agent_state is not None:
        updates["agent_state"] = dumps(turn.agent_state)
    if turn.queue is not None:
        updates["queue"] = turn.queue
    if turn.brief is not None:
        updates["brief"] = turn.brief.model_dump_json()
    state_event = None
    closing = False
    if turn.state is not None and turn.state.value != conv["state"]:
        updates["state"] = turn.state.value
        state_event = {"from": conv["state"], "to": turn.state.value}
        if turn.state is ConversationState.CLOSED:
            updates["closed_at"] = ts
            closing = True
    return TurnChanges(updates, state_event, closing)


def version_conflict(conversation_id: int, current: int, expected: int) -> str | None:
    """The ConflictError message when an optimistic turn lost its race, else None."""
    if current == expected:
        return None
    return f"conversation {conversation_id} is at version {current}, not {expected}"


# --------------------------------------------------------------- delivery


def delivery_moves(current: str | None, status: DeliveryStatus) -> bool:
    """Provider callbacks arrive out of order: never step back from a later state."""
    return current is None or status.rank > DeliveryStatus(current).rank


def delivery_failed(status: DeliveryStatus) -> bool:
    return status in (DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED)


# A reply stored by a turn is claimed by the node that stored it for this long (it
# sends it at once); a node that dies holding claims leaves them to others after it.
# Longer than one send takes (the SMS and relay timeouts); GATEWAY_OUTBOX_LEASE_S.
OUTBOX_LEASE_MS = 60_000


def leaves_outbox(status: DeliveryStatus) -> bool:
    """Whether a reply marked `status` is done with the outbox (the provider took it,
    or it failed for good); `sending` stays in it: the attempt's outcome is unknown."""
    return status.rank >= DeliveryStatus.SENT.rank


# ---------------------------------------------------------------- linking


def raised_verification(known: Verification, seen: Verification) -> Verification | None:
    """The verification to record for an identity already known as `known` that a
    message now proves with `seen`: `seen` when stronger, else None (never weaker).
    The same whichever customer record holds the identity, also right after the
    message merged two records (the identity moved with its record)."""
    return seen if VERIFICATION_RANK[seen] > VERIFICATION_RANK[known] else None


@dataclass(frozen=True, slots=True)
class Holder:
    """The customer record that holds an identity now."""

    customer_id: int
    verified: Verification
    account_ref: str | None
    has_messages: bool


@dataclass(frozen=True, slots=True)
class LinkPlan:
    """What `link_identity` does; see linking.py for the rules in words."""

    result: LinkResult
    insert: bool = False  # a new identity row
    verified: Verification | None = None  # else: the identity row moves here with this
    moved_from: int | None = None  # the (empty) record the identity is taken from
    merge: int | None = None  # the record to merge into the customer first
    account_ref: str | None = None  # tie the customer to this account (it has none)


def plan_link(
    customer_id: int,
    own_account: str | None,
    identity_verified: Verification,
    account_ref: str | None,
    holder: Holder | None,
) -> LinkPlan:
    """Decide what linking an identity (proved with `identity_verified`) to the customer
    does, from who holds it now. Nothing is written for `OTHER_ACCOUNT`."""
    if account_ref and own_account and own_account != account_ref:
        return LinkPlan(LinkResult.OTHER_ACCOUNT)
    tie = account_ref
    if holder is None:
        return LinkPlan(LinkResult.LINKED, insert=True, account_ref=_tie(tie, own_account))
    verified = max(holder.verified, identity_verified, key=VERIFICATION_RANK.__getitem__)
    if holder.customer_id == customer_id:
        return LinkPlan(LinkResult.ALREADY, verified=verified, account_ref=_tie(tie, own_account))
    theirs = holder.account_ref
    if theirs and theirs != (account_ref or own_account or theirs):
        return LinkPlan(LinkResult.OTHER_ACCOUNT)
    if not holder.has_messages:
        return LinkPlan(
            LinkResult.LINKED, verified=verified, moved_from=holder.customer_id,
            account_ref=_tie(tie, own_account),
        )  # fmt: skip
    # The merged record's account is theirs now.
    return LinkPlan(
        LinkResult.MERGED, verified=verified, merge=holder.customer_id,
        account_ref=_tie(account_ref or theirs, own_account),
    )  # fmt: skip


def _tie(account_ref: str | None, own_account: str | None) -> str | None:
    return account_ref if account_ref and not own_account else None


# ---------------------------------------------------------------- merging


def renumbered(
    survivor: int, last_seq: int, moved_ids: Sequence[int]
) -> list[tuple[int, int, int]]:
    """(customer_id, seq, message id) for the merged record's messages, in their order,
    numbered after the survivor's last seq. New pairs cannot collide: the survivor's
    own seqs are all <= `last_seq`."""
    return [(survivor, last_seq + i, mid) for i, mid in enumerate(moved_ids, start=1)]


def merged_event(
    reason: Mapping[str, Any], merged: int, survivor: int, last_seq: int, moved: int
) -> dict[str, Any]:
    """The data of the `customer.merged` event."""
    return {
        **reason,
        "from_customer": merged,
        "into_customer": survivor,
        "messages": moved,
        "seqs": [last_seq + 1, last_seq + moved] if moved else [],
    }


MERGED_TABLES = ("identities", "conversations", "events")
"""Tables whose rows change owner in a merge (messages are renumbered besides)."""


__all__ = [
    "MERGED_TABLES",
    "Holder",
    "LinkPlan",
    "TurnChanges",
    "delivery_failed",
    "delivery_moves",
    "merged_event",
    "plan_link",
    "raised_verification",
    "renumbered",
    "turn_changes",
    "version_conflict",
]
