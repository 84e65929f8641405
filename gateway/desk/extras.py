"""The summary's volume, handover-reason, CSAT-breakdown and next-response SLA
figures (docs/reports.md), from the GROUP BY reads of gateway/store/extras_sql.py
over the same conversations as the rest of the summary (period and filters):

- `messages`: the messages of these conversations (whenever written), inbound (the
  customer's) and outbound (the agent's and the reps'), by the conversation's
  channel and by the hour of day they were written (GATEWAY_BUSINESS_TIMEZONE);
- `handed_over_why`: the handed-over conversations by the reason in the brief of
  their first handover, grouped (`reason_group`): sums to `handed_over`;
- `csat_by_channel`, `csat_by_queue` (none: ""): counted from the facts' scores;
  `csat_by_rep` (each rep who took a rated conversation counts its rating);
- next-response SLA: each wait (a `report_responses` row, or the wait still open
  at `until`/now) longer, in business hours, than its queue's next-response
  target; `sla.next_response` counts the conversations with one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any, NamedTuple

import numpy as np
from pydantic import Field

from gateway.desk.cost import UsageRead
from gateway.desk.facts import FactColumns, known
from gateway.desk.gaps import SPEECH, is_gap
from gateway.desk.sla import BusinessClock
from gateway.models import Frozen

DIRECTIONS = ("inbound", "outbound")

# The brief's reason, grouped: the first pattern that matches names its group (the
# agent's own reasons, agent/turn.py, flows.py, policy.py, and the LLM's words
# when it escalates); a reason matching none is "other", an empty one "unspecified".
REASON_GROUPS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        ("speech", SPEECH.pattern),
        ("requested", r"asked for (?:a )?(?:person|human|agent|rep)|wants? (?:a )?(?:person|human)"
                      r"|speak to (?:a )?(?:person|human)"),
        ("angry", r"angry|upset|frustrat"),
        ("complaint", r"complaint|legal|compensation"),
        ("compromised", r"compromis|fraud|hack"),
        ("refund", r"refund"),
        ("dispute", r"disput"),
        ("refused", r"refused|not on the customer's account|needs a person"),
        ("backend", r"backend|failed|error"),
    )
)


def reason_group(reason: str | None) -> str:
    """The group of a handover's brief reason (`unanswered`: a help-centre gap,
    gateway/desk/gaps.py `is_gap`)."""
    text = (reason or "").strip()
    if not text:
        return "unspecified"
    if is_gap(text):
        return "unanswered"
    return next((name for name, pattern in REASON_GROUPS if pattern.search(text)), "other")


class ExtrasRead(NamedTuple):
    """The reads' rows (gateway/store/extras_sql.py)."""

    messages: Sequence[tuple[Any, ...]]  # channel, direction, hour since the epoch, count
    reasons: Sequence[tuple[Any, ...]]  # reason (None: none), count
    csat_reps: Sequence[tuple[Any, ...]]  # rep id, name, count, sum of scores
    waits: Sequence[tuple[Any, ...]]  # conversation id, queue, asked at, replied at (None)


class ReportReads(NamedTuple):
    """Everything the summary reads, as of one snapshot (DeskStore.report_reads)."""

    facts: FactColumns
    extras: ExtrasRead
    usage: UsageRead


class Messages(Frozen):
    inbound: int = Field(description="Messages from customers.")
    outbound: int = Field(description="Messages to customers (the agent's and reps').")
    by_channel: dict[str, dict[str, int]] = Field(
        description="Channel -> {inbound, outbound} (the conversation's channel)."
    )
    by_hour: dict[str, list[int]] = Field(
        description="inbound/outbound -> messages by the hour of day they were written "
        "(0-23, GATEWAY_BUSINESS_TIMEZONE)."
    )


class CsatGroup(Frozen):
    count: int = Field(description="Conversations rated.")
    average: float | None = Field(description="Mean score 1-5, two decimals.")


class RepCsat(Frozen):
    rep_id: int
    name: str
    count: int = Field(description="Rated conversations the rep took.")
    average: float | None = Field(description="Mean score 1-5, two decimals.")


class Extras(NamedTuple):
    """The figures, and the conversations that missed a next-response target."""

    messages: Messages
    handed_over_why: dict[str, int]
    csat_by_channel: dict[str, CsatGroup]
    csat_by_queue: dict[str, CsatGroup]
    csat_by_rep: list[RepCsat]
    next_response_late: set[int]


def _group(count: int, total: int) -> CsatGroup:
    return CsatGroup(count=count, average=round(total / count, 2) if count else None)


def _messages(rows: Sequence[tuple[Any, ...]], channels: Sequence[str], tz: tzinfo) -> Messages:
    by_channel = {c: dict.fromkeys(DIRECTIONS, 0) for c in channels}
    by_hour = {d: [0] * 24 for d in DIRECTIONS}
    local: dict[int, int] = {}  # hour since the epoch -> hour of day (one lookup each)
    for channel, direction, hour, n in rows:
        if direction not in DIRECTIONS:
            continue
        h = int(hour)
        if h not in local:
            local[h] = datetime.fromtimestamp(h * 3600, tz).hour
        by_channel.setdefault(str(channel), dict.fromkeys(DIRECTIONS, 0))[direction] += int(n)
        by_hour[direction][local[h]] += int(n)
    return Messages(inbound=sum(by_hour["inbound"]), outbound=sum(by_hour["outbound"]),
                    by_channel=by_channel, by_hour=by_hour)  # fmt: skip


def _late(
    rows: Sequence[tuple[Any, ...]], targets: Mapping[str, float], clock: BusinessClock,
    end_ms: int,
) -> set[int]:  # fmt: skip
    """The conversations with a wait longer than their queue's target (business hours)."""
    if not rows:
        return set()
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    target = np.array([targets.get(r[1] or "", math.nan) for r in rows], dtype=np.float64)
    asked = np.array([r[2] for r in rows], dtype=np.float64)
    replied = np.array([end_ms if r[3] is None else r[3] for r in rows], dtype=np.float64)
    used = clock.elapsed_many(asked / 1000, replied / 1000)
    return {int(i) for i in ids[~np.isnan(target) & (used > target)]}


def _csat_by(
    facts: FactColumns, channels: Sequence[str]
) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """[count, sum of scores] of the rated (1-5) conversations by channel (`channels`
    always listed) and by queue ("": never queued), from the facts' scores (kept from
    `ratings` by triggers: 0013, a deleted rating 0018)."""
    rated = known(facts.score) & (facts.score >= 1) & (facts.score <= 5)
    scores = facts.score[rated].astype(np.int64)
    by_channel: dict[str, list[int]] = {c: [0, 0] for c in channels}
    by_queue: dict[str, list[int]] = {}
    for column, into in ((facts.channel, by_channel), (facts.queue, by_queue)):
        keys = np.array([str(k or "") for k in column[rated].tolist()], dtype=object)
        for key in dict.fromkeys(keys.tolist()):
            on = keys == key
            into[key] = [int(on.sum()), int(scores[on].sum())]
    return by_channel, by_queue


def extras(
    read: ExtrasRead, facts: FactColumns, *, channels: Sequence[str], tz: tzinfo,
    next_response_s: Mapping[str, float], clock: BusinessClock, end_ms: int,
) -> Extras:  # fmt: skip
    """The figures of `read` and of `facts` (the same conversations); hours of day in
    `tz`; waits on `clock` up to `end_ms`."""
    why: dict[str, int] = {}
    for reason, n in read.reasons:
        group = reason_group(None if reason is None else str(reason))
        why[group] = why.get(group, 0) + int(n)
    by_channel, by_queue = _csat_by(facts, channels)
    reps = sorted(
        (RepCsat(rep_id=int(i), name=str(name), count=int(n),
                 average=round(int(total) / int(n), 2) if n else None)
         for i, name, n, total in read.csat_reps),
        key=lambda r: r.rep_id,
    )  # fmt: skip
    return Extras(
        messages=_messages(read.messages, channels, tz),
        handed_over_why=dict(sorted(why.items(), key=lambda kv: (-kv[1], kv[0]))),
        csat_by_channel={k: _group(*v) for k, v in by_channel.items()},
        csat_by_queue={k: _group(*v) for k, v in sorted(by_queue.items())},
        csat_by_rep=reps,
        next_response_late=_late(read.waits, next_response_s, clock, end_ms),
    )


def extras_update(figures: Extras) -> dict[str, Any]:
    """The summary's fields these figures fill (a `model_copy` update)."""
    return {
        "messages": figures.messages, "handed_over_why": figures.handed_over_why,
        "csat_by_channel": figures.csat_by_channel, "csat_by_queue": figures.csat_by_queue,
        "csat_by_rep": figures.csat_by_rep,
    }  # fmt: skip


__all__ = ["CsatGroup", "Extras", "ExtrasRead", "Messages", "RepCsat", "ReportReads", "extras",
           "extras_update", "reason_group"]  # fmt: skip
