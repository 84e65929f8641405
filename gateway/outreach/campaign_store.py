"""`CampaignStore`: campaigns, their recipients' progress, the shared send pace and
the "calls saved" figure (SQLite: `SqliteCampaignStore`, PostgreSQL:
`PostgresCampaignStore`; the SQL text is shared, `?` marks).

The pace: `reserve(key, ...)` takes the next free send slot of a pace in one
statement (an upsert that moves `next_at` on by one interval) and answers when it
is; every node reserves from the same row, so the rate holds for the whole cluster.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from gateway.outreach.campaigns import Campaign, CampaignMessage, CampaignState
from gateway.outreach.models import Outreach, OutreachEvent
from gateway.outreach.store import outreach_from_row
from gateway.store.rows import Row, to_dt

INSERT_CAMPAIGN = (
    "INSERT INTO outreach_campaigns (id, name, state, message, rate, total, created_by,"
    " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_RECIPIENT = (
    "INSERT INTO outreach (id, event_id, type, payload, state, tried, due_at, created_at,"
    " updated_at, campaign_id, campaign_row) VALUES (?, ?, ?, ?, 'queued', '[]', ?, ?, ?, ?, ?)"
    " ON CONFLICT (event_id) DO NOTHING"
)
BY_ID = "SELECT * FROM outreach_campaigns WHERE id = ?"
LIST = "SELECT * FROM outreach_campaigns ORDER BY created_at DESC LIMIT ?"
SET_STATE = "UPDATE outreach_campaigns SET state = ?, updated_at = ? WHERE id = ? AND state = ?"
# Cancel: whoever has not been sent to is skipped (a row being sent finishes).
SKIP_REST = (
    "UPDATE outreach SET state = 'skipped', error = 'cancelled', due_at = NULL,"
    " updated_at = ? WHERE campaign_id = ? AND state IN ('queued', 'deferred')"
)
COUNTS = (
    "SELECT state, error, COUNT(*) AS n FROM outreach WHERE campaign_id = ? GROUP BY state, error"
)
RECIPIENTS = (
    "SELECT * FROM outreach WHERE campaign_id = ? AND campaign_row > ?"
    " ORDER BY campaign_row LIMIT ?"
)
# Still ours and still to be sent (its campaign running): hold it for another lease.
PROCEED = (
    "UPDATE outreach SET claimed_until = ? WHERE id = ? AND claimed_until = ?"
    " AND state IN ('queued', 'deferred') AND (campaign_id IS NULL OR campaign_id IN"
    " (SELECT id FROM outreach_campaigns WHERE state = 'running'))"
)
LET_GO = "UPDATE outreach SET claimed_until = NULL WHERE id = ? AND claimed_until = ?"
RESERVE_SQLITE = (
    "INSERT INTO outreach_pace (key, next_at) VALUES (?, ?) ON CONFLICT (key) DO UPDATE"
    " SET next_at = MAX(outreach_pace.next_at, excluded.next_at - ?) + ? RETURNING next_at"
)
RESERVE_PG = (
    "INSERT INTO outreach_pace (key, next_at) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE"
    " SET next_at = GREATEST(outreach_pace.next_at, excluded.next_at - $3) + $4 RETURNING next_at"
)
# Outreach sent in the period, at least `window` ago, and whether the customer wrote or
# called (an inbound message on any channel) within `window` after it.
SAVED = (
    "SELECT o.id, (SELECT COUNT(*) FROM messages r WHERE r.customer_id = o.customer_id"
    "  AND r.direction = 'inbound' AND r.created_at > o.sent_at"
    "  AND r.created_at <= o.sent_at + ?) AS contacts"
    " FROM outreach o WHERE o.created_at >= ? AND o.created_at < ? AND o.sent_at IS NOT NULL"
    " AND o.sent_at <= ? AND o.state IN ('sent', 'delivered')"
)
OPEN_STATES = ("queued", "deferred", "sending")


def campaign_from_row(row: Row) -> Campaign:
    return Campaign(
        id=row["id"], name=row["name"], state=CampaignState(row["state"]),
        message=CampaignMessage.model_validate_json(row["message"]), rate=row["rate"],
        total=row["total"], created_by=row["created_by"],
        created_at=to_dt(row["created_at"]), updated_at=to_dt(row["updated_at"]),
    )  # fmt: skip


def campaign_args(c: Campaign, now_ms: int) -> tuple[Any, ...]:
    return (c.id, c.name, c.state.value, c.message.model_dump_json(exclude_none=True), c.rate,
            c.total, c.created_by, now_ms, now_ms)  # fmt: skip


def recipient_args(campaign_id: str, events: list[tuple[str, int, OutreachEvent]],
                   now_ms: int) -> list[tuple[Any, ...]]:  # fmt: skip
    return [(oid, e.id, e.type, e.model_dump_json(), now_ms, now_ms, now_ms, campaign_id, n)
            for oid, n, e in events]  # fmt: skip


def tally(rows: list[Row]) -> dict[str, int]:
    """Recipients by state (`cancelled`: skipped by a cancel; `opted_out` too)."""
    out = dict.fromkeys(("queued", "deferred", "sending", "sent", "delivered", "failed",
                         "skipped", "cancelled", "opted_out"), 0)  # fmt: skip
    for r in rows:
        state, n = r["state"], int(r["n"])
        if state == "skipped" and r["error"] == "cancelled":
            out["cancelled"] += n
            continue
        out[state] = out.get(state, 0) + n
        if state == "skipped" and r["error"] in ("opted_out", "unsubscribed"):
            out["opted_out"] += n
    return out


def recipients_of(rows: list[Row]) -> list[Outreach]:
    return [outreach_from_row(r) for r in rows]


def dumps(value: Any) -> str:
    return json.dumps(value)


class CampaignStore(Protocol):
    async def create(self, campaign: Campaign, events: list[tuple[str, int, OutreachEvent]],
                     now_ms: int) -> None:  # fmt: skip
        """The campaign and its recipients (outreach id, row, event), in one transaction."""
        ...

    async def get(self, campaign_id: str) -> Campaign | None: ...

    async def latest(self, limit: int) -> list[Campaign]: ...

    async def set_state(self, campaign_id: str, state: CampaignState, was: CampaignState,
                        now_ms: int) -> bool:  # fmt: skip
        """Move from `was` to `state` (False: it was not in `was`); a cancel skips every
        recipient not yet sent to, in the same transaction."""
        ...

    async def counts(self, campaign_id: str) -> dict[str, int]: ...

    async def recipients(self, campaign_id: str, after_row: int, limit: int) -> list[Outreach]: ...

    async def reserve(self, key: str, now_us: int, interval_us: int) -> int:
        """The next free send slot of the pace `key` (microseconds), taken."""
        ...

    async def proceed(self, outreach_id: str, held_until: int, until: int) -> bool:
        """True (and held until `until`) when the claim `held_until` is still this
        sender's and the outreach is still to be sent; else the claim is let go."""
        ...

    async def saved(self, since_ms: int, until_ms: int, window_ms: int, now_ms: int) -> (
        tuple[int, int]
    ):  # fmt: skip
        """(outreach followed by no inbound contact within `window_ms`, outreach sent at
        least `window_ms` before `now_ms`), of the outreach created in the period."""
        ...


__all__ = ["OPEN_STATES", "CampaignStore", "campaign_from_row", "tally"]
