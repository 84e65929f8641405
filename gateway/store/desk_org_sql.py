"""The SQL of labels, teams and queue SLA targets (`DeskOrgStore`), the same text on
SQLite and PostgreSQL (`?` marks; `desk_sql.numbered` makes them `$n`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from gateway.desk.org_store import Label, QueueTargets, ReplyTimes, Team
from gateway.store.rows import Row

LABELS = "SELECT id, name, colour FROM labels ORDER BY name"
LABEL = "SELECT id, name, colour FROM labels WHERE id = ?"
ADD_LABEL = "INSERT INTO labels (name, colour, created_at) VALUES (?,?,?)"
UPDATE_LABEL = "UPDATE labels SET name = ?, colour = ? WHERE id = ?"
UNLABEL_ALL = "DELETE FROM conversation_labels WHERE label_id = ?"
DELETE_LABEL = "DELETE FROM labels WHERE id = ?"
CONVERSATION_LABELS = (
    "SELECT l.id, l.name, l.colour FROM conversation_labels cl JOIN labels l"
    " ON l.id = cl.label_id WHERE cl.conversation_id = ? ORDER BY l.name"
)
HAS_LABEL = "SELECT 1 FROM conversation_labels WHERE conversation_id = ? AND label_id = ?"
LABEL_ON = (
    "INSERT INTO conversation_labels (conversation_id, label_id, added_by, added_at)"
    " VALUES (?,?,?,?)"
)
LABEL_OFF = "DELETE FROM conversation_labels WHERE conversation_id = ? AND label_id = ?"
CONVERSATION_EXISTS = "SELECT 1 FROM conversations WHERE id = ?"
LABEL_EVENT = (
    "INSERT INTO events (conversation_id, customer_id, kind, data, created_at)"
    " SELECT id, customer_id, ?, ?, ? FROM conversations WHERE id = ?"
)

TEAMS = "SELECT id, name FROM teams ORDER BY name"
MEMBERS = "SELECT rep_id, team_id FROM team_members ORDER BY rep_id"
TEAM = "SELECT id, name FROM teams WHERE id = ?"
ADD_TEAM = "INSERT INTO teams (name, created_at) VALUES (?,?)"
RENAME_TEAM = "UPDATE teams SET name = ? WHERE id = ?"
EMPTY_TEAM = "DELETE FROM team_members WHERE team_id = ?"
DELETE_TEAM = "DELETE FROM teams WHERE id = ?"
LEAVE_TEAM = "DELETE FROM team_members WHERE rep_id = ?"
JOIN_TEAM = "INSERT INTO team_members (rep_id, team_id) VALUES (?,?)"
REP_EXISTS = "SELECT 1 FROM reps WHERE id = ?"
TEAM_REP_IDS = (
    "SELECT m.rep_id FROM team_members m JOIN teams t ON t.id = m.team_id"
    " WHERE t.name = ? ORDER BY m.rep_id"
)

QUEUE_TARGETS = (
    "SELECT queue, first_response_s, next_response_s, resolution_s FROM queue_sla ORDER BY queue"
)
CLEAR_QUEUE_TARGETS = "DELETE FROM queue_sla WHERE queue = ?"
SET_QUEUE_TARGETS = (
    "INSERT INTO queue_sla (queue, first_response_s, next_response_s, resolution_s,"
    " updated_by, updated_at) VALUES (?,?,?,?,?,?) ON CONFLICT (queue) DO UPDATE SET"
    " first_response_s = excluded.first_response_s, next_response_s ="
    " excluded.next_response_s, resolution_s = excluded.resolution_s,"
    " updated_by = excluded.updated_by, updated_at = excluded.updated_at"
)

# Each conversation's start, and its messages since its handover, in one read for a
# batch of (conversation id, handover ms) rows: rep replies on the (author,
# direction, conversation_id, created_at) index (0009). CASTs type the VALUES rows on
# PostgreSQL; SQLite reads them as the same integers.
REPLY_TIMES_BATCH = 400  # rows per statement (2 arguments each: within SQLite's limit)


def reply_times_sql(rows: int) -> str:
    values = ", ".join(["(CAST(? AS INTEGER), CAST(? AS BIGINT))"] * rows)
    return (
        f"WITH s(cid, since) AS (VALUES {values}) SELECT s.cid, c.created_at,"
        " (SELECT MIN(m.created_at) FROM messages m WHERE m.author = 'rep' AND m.direction ="
        " 'outbound' AND m.conversation_id = s.cid AND m.created_at >= s.since) AS first_rep,"
        " (SELECT MAX(m.created_at) FROM messages m WHERE m.author = 'rep' AND m.direction ="
        " 'outbound' AND m.conversation_id = s.cid AND m.created_at >= s.since) AS last_rep,"
        " (SELECT MAX(m.created_at) FROM messages m WHERE m.direction = 'inbound'"
        " AND m.conversation_id = s.cid AND m.created_at >= s.since) AS last_customer"
        " FROM s JOIN conversations c ON c.id = s.cid"
    )


def reply_times_batches(since: Sequence[tuple[int, int]]) -> list[tuple[str, list[int]]]:
    """(SQL with `?` marks, its arguments) for each batch of `since`."""
    out = []
    for i in range(0, len(since), REPLY_TIMES_BATCH):
        chunk = since[i : i + REPLY_TIMES_BATCH]
        out.append((reply_times_sql(len(chunk)), [x for pair in chunk for x in pair]))
    return out


def label_from_row(row: Row) -> Label:
    return Label(id=row["id"], name=row["name"], colour=row["colour"])


def event_data(label: Label, rep_id: int) -> str:
    return json.dumps({"label": label.name, "label_id": label.id, "rep_id": rep_id})


def teams_from_rows(teams: Iterable[Row], members: Iterable[Row]) -> list[Team]:
    reps: dict[int, list[int]] = {}
    for m in members:
        reps.setdefault(m["team_id"], []).append(m["rep_id"])
    return [Team(id=t["id"], name=t["name"], rep_ids=tuple(reps.get(t["id"], ()))) for t in teams]


def targets_from_row(row: Row) -> QueueTargets:
    return QueueTargets(
        queue=row["queue"], first_response_s=row["first_response_s"],
        next_response_s=row["next_response_s"], resolution_s=row["resolution_s"],
    )  # fmt: skip


def reply_times_from_row(row: Row) -> ReplyTimes:
    return ReplyTimes(row["created_at"], row["first_rep"], row["last_rep"], row["last_customer"])


def targets_args(targets: QueueTargets, rep_id: int, now: int) -> tuple[Any, ...]:
    return (targets.queue, targets.first_response_s, targets.next_response_s,
            targets.resolution_s, rep_id, now)  # fmt: skip


__all__ = ["event_data", "label_from_row", "targets_args", "targets_from_row", "teams_from_rows"]
