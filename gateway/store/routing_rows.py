"""Conversions between routing rows and routing records (any SQL store)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from gateway.routing.models import (
    ConsoleEvent,
    Offer,
    OfferStatus,
    Outcome,
    Presence,
    QueueEntry,
    Rep,
    RepChanges,
    Role,
    WorkKind,
)
from gateway.routing.store import RatingTarget
from gateway.store.rows import Row, dumps, to_dt

REPS_CHANNEL = "gateway_reps"
"""PostgreSQL NOTIFY channel: a rep was added or changed (the payload is their id);
the routing leader listens and reads its reps again (routing/leader.py)."""

REP_SELECT = (
    "SELECT r.*, p.status AS presence, p.last_busy_at FROM reps r"
    " LEFT JOIN rep_presence p ON p.rep_id = r.id"
)
"""A rep's row with their presence, as `rep_from_row` reads it (same SQL on both stores)."""


def _dt(ms: int | None) -> datetime | None:
    return None if ms is None else to_dt(ms)


def rep_from_row(row: Row) -> Rep:
    return Rep(
        id=row["id"],
        username=row["username"],
        display_name=row["display_name"],
        skills=tuple(json.loads(row["skills"])),
        phone=row["phone"],
        max_text=row["max_text"],
        max_calls=row["max_calls"],
        presence=Presence(row["presence"] or Presence.OFFLINE.value),
        last_busy_at=_dt(row["last_busy_at"]),
        created_at=to_dt(row["created_at"]),
        role=Role(row["role"] or Role.REP.value),
        disabled=row["disabled_at"] is not None,
    )


def rep_updates(changes: RepChanges, ts: int) -> dict[str, Any]:
    """The `reps` columns `changes` sets (column -> value), in a fixed order."""
    updates: dict[str, Any] = {}
    if changes.display_name is not None:
        updates["display_name"] = changes.display_name
    if changes.skills is not None:
        updates["skills"] = dumps(list(changes.skills))
    if changes.phone is not None:
        updates["phone"] = changes.phone or None
    if changes.max_text is not None:
        updates["max_text"] = changes.max_text
    if changes.max_calls is not None:
        updates["max_calls"] = changes.max_calls
    if changes.role is not None:
        updates["role"] = changes.role.value
    if changes.password_hash is not None:
        updates["password_hash"] = changes.password_hash
    if changes.disabled is not None:
        updates["disabled_at"] = ts if changes.disabled else None
    return updates


def entry_from_row(row: Row) -> QueueEntry:
    return QueueEntry(
        id=row["id"],
        conversation_id=row["conversation_id"],
        queue=row["queue"],
        kind=WorkKind(row["kind"]),
        priority=row["priority"],
        from_rep_id=row["from_rep_id"],
        target_rep_id=row["target_rep_id"],
        note=row["note"],
        rep_id=row["rep_id"],
        enqueued_at=to_dt(row["enqueued_at"]),
        assigned_at=_dt(row["assigned_at"]),
        ended_at=_dt(row["ended_at"]),
        outcome=Outcome(row["outcome"]) if row["outcome"] else None,
    )


def offer_from_row(row: Row) -> Offer:
    return Offer(
        id=row["id"],
        entry_id=row["entry_id"],
        rep_id=row["rep_id"],
        status=OfferStatus(row["status"]),
        created_at=to_dt(row["created_at"]),
        expires_at=to_dt(row["expires_at"]),
    )


def console_from_row(row: Row) -> ConsoleEvent:
    return ConsoleEvent(
        seq=row["seq"],
        rep_id=row["rep_id"],
        queue=row["queue"],
        kind=row["kind"],
        data=json.loads(row["data"]),
        created_at=to_dt(row["created_at"]),
    )


def rating_from_row(row: Row) -> RatingTarget:
    return RatingTarget(
        conversation_id=row["conversation_id"],
        customer_id=row["customer_id"],
        channel=row["channel"],
        score=row["score"],
    )
