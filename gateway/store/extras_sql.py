"""The reports' extra figures' reads (gateway/desk/extras.py), the same text on SQLite
and PostgreSQL (`?` marks), each a GROUP BY over the period's conversations in
`report_facts` with the summary's filters (desk_sql.period_where), so only a few
hundred rows come back over 100,000 conversations (the next-response waits apart).
The summary runs them with the facts and usage reads as of one snapshot
(`DeskStore.report_reads`: pg_report.py, sqlite_desk.py).
"""

from __future__ import annotations

from typing import Any

from gateway.desk.extras import ExtrasRead

# Messages by the conversation's channel, direction and hour since the epoch, summed
# from `report_message_hours` (kept by triggers, migration 0017: a few rows per
# conversation, not every message; a row whose messages were all deleted is 0). The
# hours of day in the business time zone are counted from these in Python: one zone
# lookup per hour, not per message.
_MESSAGES = (
    "SELECT f.channel, h.direction, h.epoch_hour, SUM(h.n) FROM report_message_hours h"
    " JOIN report_facts f ON f.conversation_id = h.conversation_id WHERE h.n > 0 AND {cond}"
    " GROUP BY f.channel, h.direction, h.epoch_hour"
)
# The reason of each handed-over conversation's first handover, kept in report_facts
# by triggers on events (migration 0018): no JSON read per handover.
_REASONS = (
    "SELECT f.handover_reason, COUNT(*) FROM report_facts f"
    " WHERE f.handover_at IS NOT NULL AND {cond} GROUP BY f.handover_reason"
)
# Each rep who took a rated conversation counts its rating once: the (conversation,
# rep) pairs of `report_rep_conversations` (kept by triggers on queue_entries, 0018)
# joined to the facts' scores.
_CSAT_REPS = (
    "SELECT p.id, p.display_name, COUNT(*), SUM(f.score) FROM report_rep_conversations x"
    " JOIN report_facts f ON f.conversation_id = x.conversation_id JOIN reps p ON p.id = x.rep_id"
    " WHERE x.n > 0 AND f.score BETWEEN 1 AND 5 AND {cond} GROUP BY p.id, p.display_name"
)
# Next-response waits of the queues with a target: answered ones and the one still
# open (`awaiting_since`), with their conversation (a conversation breaches once).
_WAITS = (
    "SELECT f.conversation_id, f.queue, r.asked_at, r.replied_at FROM report_responses r"
    " JOIN report_facts f ON f.conversation_id = r.conversation_id WHERE {cond} AND {queues}"
    " UNION ALL SELECT f.conversation_id, f.queue, f.awaiting_since, NULL FROM report_facts f"
    " WHERE f.awaiting_since IS NOT NULL AND {cond} AND {queues}"
)


def extras_sql(cond: str, args: list[Any], target_queues: set[str]) -> list[tuple[str, list[Any]]]:
    """The four reads (ExtrasRead's order) of the conversations matching `cond`
    (report_facts `f`, with `args`); waits only of `target_queues`."""
    queues = f"f.queue IN ({', '.join('?' * len(target_queues))})" if target_queues else "1 = 0"
    waits_args = [*args, *sorted(target_queues), *args, *sorted(target_queues)]
    return [
        (_MESSAGES.format(cond=cond), args),
        (_REASONS.format(cond=cond), args),
        (_CSAT_REPS.format(cond=cond), args),
        (_WAITS.format(cond=cond, queues=queues), waits_args),
    ]


def extras_read(results: list[list[Any]]) -> ExtrasRead:
    """An ExtrasRead from the four reads' rows (tuples or asyncpg records)."""
    return ExtrasRead(*([tuple(row) for row in rows] for rows in results))


__all__ = ["extras_read", "extras_sql"]
