"""The reports' figures for a period, computed from what the store holds.

Counted over the conversations created in [since, until):

- `bot_resolved`: never handed over, and resolved by the agent (a
  `conversation.resolved` event, `how` confirmed or assumed) or closed;
- `handed_over`: with a `handover` event (the agent passed it to a person);
- `first_response_seconds`: from the (first) handover to the first reply a rep wrote;
- `resolution_seconds`: from the conversation's start to its close or, for the
  agent's, to its `conversation.resolved` event;
- `next_response_seconds`: each customer message that came while a rep held the
  conversation (state `with_rep`: from a rep taking it, `rep.assigned`, until
  `rep.closed` or `rep.handed_back`; a transfer between reps keeps it held) and after
  a rep had replied in it, to the next reply a rep wrote; consecutive customer
  messages are one wait, measured from the first of them. One value per such wait;
- `queue_wait_seconds`: from the conversation entering a queue (its queue entry,
  written with the `queue.entered` event right after the `handover`; or a reopen) to
  a rep taking it (`rep.assigned`: an offer accepted, taken from the waiting list or
  assigned by a lead). Its first wait only; transfers between reps are not queue
  waits; never taken: not measured;
- `handle_seconds`: the time reps held it: each stretch from a rep taking it
  (`rep.assigned`) to that rep closing it (`rep.closed`), handing it back to the agent
  (`rep.handed_back`) or another rep accepting its transfer, summed per conversation
  (a call's wrap-up included: the rep holds it until they close it); a stretch not
  yet over is not counted;
- `csat`: the customers' ratings (1-5) of these conversations;
- `sla_breaches`: handed-over conversations of a queue with targets (set in the
  console, else GATEWAY_SLA_FIRST_RESPONSE_S, GATEWAY_SLA_RESOLUTION_S,
  GATEWAY_SLA_NEXT_RESPONSE_S) that missed one: answered or closed later than the
  target, or not yet and already past it at `until` (or now, whichever is earlier);
  next responses: a wait longer than the target (gateway/desk/extras.py). Counted in
  business hours (desk/sla.py);
  `sla.at_risk`: those not yet answered or closed, not breached, with less than the
  at-risk share of a target left.

The filters narrow the conversations counted: `channels` (the channel it is on),
`queues` (its queue), `rep_ids` (a rep who took it: every figure of a conversation a
rep worked counts for that rep, the whole conversation's). They are applied by the
store (`DeskStore.facts`); the times come from `report_facts`, kept by triggers in
the transactions that write the events, messages and queue entries (migration 0013).

Percentiles interpolate linearly between the closest ranks (as PostgreSQL's
`percentile_cont` and numpy's default do); null when nothing was measured.

The facts come as columns (gateway/desk/facts.py): the figures are masks, counts and
array arithmetic over them, the same IEEE operations as a loop over each
conversation would do (bench/reports.py prints a fingerprint of the figures).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from gateway.desk.cost import Cost, cost_csv_rows
from gateway.desk.extras import CsatGroup, Messages, RepCsat
from gateway.desk.facts import FactColumns, Floats, known
from gateway.desk.sla import DEFAULT_AT_RISK_SHARE, BusinessClock
from gateway.desk.store import ConversationFacts
from gateway.models import ChannelKind, Frozen
from gateway.outreach.models import OutreachReport

CHANNELS = (ChannelKind.WEBCHAT, ChannelKind.SMS, ChannelKind.EMAIL, ChannelKind.PHONE)
# The speed figures (each `Percentiles`), in the order the CSV and the page list them.
SPEED = (
    "first_response_seconds", "next_response_seconds", "queue_wait_seconds", "handle_seconds",
    "resolution_seconds",
)  # fmt: skip


class Percentiles(Frozen):
    p50: float | None = Field(description="Median, seconds (null: nothing measured).")
    p90: float | None = Field(description="90th percentile, seconds.")
    count: int = Field(
        description="How many were measured: conversations (next responses: the waits)."
    )


class Csat(Frozen):
    count: int = Field(description="Conversations rated.")
    average: float | None = Field(description="Mean score 1-5, two decimals (null: none).")
    distribution: dict[str, int] = Field(description='Score ("1".."5") -> how many.')


class SlaFigures(Frozen):
    first_response: int = Field(description="Conversations past their first-response target.")
    resolution: int = Field(description="Conversations past their resolution target.")
    next_response: int = Field(
        default=0,
        description="Conversations with a next-response wait past its target (business "
        "hours; a wait still open at until/now counts once past it).",
    )
    at_risk: int = Field(
        default=0,
        description="Conversations not yet answered or closed, not breached, with less than "
        "GATEWAY_SLA_AT_RISK_SHARE of a target left (business hours).",
    )


class Summary(Frozen):
    """`GET /api/v1/reports/summary`."""

    since: datetime
    until: datetime
    conversations: int = Field(description="Conversations started in the period.")
    by_channel: dict[str, int] = Field(
        description="Conversations by the channel they are on: webchat, sms, email, phone."
    )
    bot_resolved: int = Field(description="Resolved by the agent alone (never handed over).")
    bot_resolved_how: dict[str, int] = Field(
        description="The agent's resolutions by how they were known: confirmed by the "
        "customer, assumed (no reply after an answer), closed."
    )
    handed_over: int = Field(description="Handed over to a person by the agent.")
    resolution_rate: float | None = Field(description="bot_resolved / conversations.")
    handover_rate: float | None = Field(description="handed_over / conversations.")
    first_response_seconds: Percentiles = Field(
        description="From the handover to the first reply a rep wrote."
    )
    resolution_seconds: Percentiles = Field(
        description="From the start to the close (or the agent's resolution)."
    )
    next_response_seconds: Percentiles = Field(
        description="From a customer's message (while a rep holds the conversation, after "
        "a rep replied) to the rep's next reply; each wait counts."
    )
    queue_wait_seconds: Percentiles = Field(
        description="From entering a queue to a rep taking it (its first wait)."
    )
    handle_seconds: Percentiles = Field(
        description="Time reps held it: from taking it to closing it, handing it back or "
        "transferring it away, summed per conversation."
    )
    by_hour: list[int] = Field(
        description="Conversations by the hour of day they started (0-23, in "
        "GATEWAY_BUSINESS_TIMEZONE)."
    )
    csat: Csat
    sla_breaches: int = Field(description="Conversations that missed an SLA target.")
    sla: SlaFigures
    # The extra sections (gateway/desk/extras.py; null only where not computed).
    messages: Messages | None = Field(
        default=None, description="Messages of these conversations, inbound and outbound, by "
        "channel and by hour of day (GATEWAY_BUSINESS_TIMEZONE)."
    )  # fmt: skip
    handed_over_why: dict[str, int] | None = Field(
        default=None, description="Handed-over conversations by the (grouped) reason of their "
        "first handover's brief: unanswered, requested, angry, complaint, compromised, refund, "
        "dispute, refused, backend, speech, other, unspecified (docs/reports.md)."
    )  # fmt: skip
    csat_by_channel: dict[str, CsatGroup] | None = Field(default=None,
                                                         description="CSAT by channel.")
    csat_by_queue: dict[str, CsatGroup] | None = Field(
        default=None, description='CSAT by queue ("": never queued).'
    )
    csat_by_rep: list[RepCsat] | None = Field(
        default=None, description="CSAT by rep: each rep who took a rated conversation."
    )
    # The cost section (gateway/desk/cost.py), priced by GATEWAY_COST_RATES.
    cost: Cost | None = Field(default=None, description="What the conversations cost.")

    outreach: OutreachReport | None = Field(
        None, description="Outreach (events and campaigns) created in the period: sent, "
        "delivered, replied to, failed, opted out, and the calls it saved (docs/outreach.md)."
    )  # fmt: skip


_ALWAYS = BusinessClock({}, ZoneInfo("UTC"))


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th quantile (0..1) of sorted `values`, linearly interpolated."""
    if not len(values):
        return None
    pos = (len(values) - 1) * q
    low, high = math.floor(pos), math.ceil(pos)
    return float(values[low] + (values[high] - values[low]) * (pos - low))


def _spread(values: Floats) -> Percentiles:
    ordered = np.sort(values)
    p50, p90 = percentile(ordered, 0.5), percentile(ordered, 0.9)  # type: ignore[arg-type]
    return Percentiles(
        p50=None if p50 is None else round(p50, 3),
        p90=None if p90 is None else round(p90, 3),
        count=len(values),
    )


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _by_hour(created_at: NDArray[np.int64], tz: tzinfo) -> list[int]:
    """Conversations by the hour of day they started in `tz` (one zone lookup per hour
    since the epoch, not per conversation)."""
    hours, at = np.unique(created_at // 3_600_000, return_inverse=True)
    local = np.array([datetime.fromtimestamp(int(h) * 3600, tz).hour for h in hours],
                     dtype=np.int64)  # fmt: skip
    return [int(n) for n in np.bincount(local[at], minlength=24)]


def _counted(values: Iterable[str], into: dict[str, int]) -> dict[str, int]:
    """`into` plus how many times each value comes (new ones added in order)."""
    for value, n in Counter(values).items():
        into[value] = into.get(value, 0) + n
    return into


def _sla(
    f: FactColumns, handed: NDArray[np.bool_], end_ms: int, first_response_s: Mapping[str, float],
    resolution_s: Mapping[str, float], clock: BusinessClock, at_risk_share: float,
    next_late: Iterable[int] = (),
) -> tuple[SlaFigures, int]:  # fmt: skip
    """The handed-over conversations' SLA figures and how many missed a target (in
    business hours)."""
    queues = [q or "" for q in f.queue[handed].tolist()]
    late: dict[str, NDArray[np.bool_]] = {}
    risky = np.zeros(len(queues), dtype=bool)
    for kind, targets, start, done in (
        ("first", first_response_s, f.handover_at[handed], f.rep_reply_at[handed]),
        ("resolution", resolution_s, f.created_at[handed].astype(np.float64), f.closed_at[handed]),
    ):
        target = np.array([targets.get(q, math.nan) for q in queues], dtype=np.float64)
        has = known(target)
        open_ = ~known(done)
        used = clock.elapsed_many(start[has] / 1000, np.where(open_, end_ms, done)[has] / 1000)
        late[kind] = np.zeros(len(queues), dtype=bool)
        late[kind][has] = used > target[has]
        risky[has] |= open_[has] & (used > target[has] * (1 - at_risk_share))
    # Next responses (gateway/desk/extras.py): the conversations with a wait past it.
    late["next"] = np.isin(f.id[handed], np.fromiter(next_late, dtype=np.int64))
    missed = late["first"] | late["resolution"] | late["next"]
    figures = SlaFigures(
        first_response=int(late["first"].sum()), resolution=int(late["resolution"].sum()),
        next_response=int(late["next"].sum()), at_risk=int((risky & ~missed).sum()),
    )  # fmt: skip
    return figures, int(missed.sum())


def summarize(
    facts: FactColumns | Sequence[ConversationFacts],
    since: datetime,
    until: datetime,
    *,
    now: datetime,
    first_response_s: Mapping[str, float],
    resolution_s: Mapping[str, float],
    tz: tzinfo = UTC,
    clock: BusinessClock | None = None,
    at_risk_share: float = DEFAULT_AT_RISK_SHARE,
    next_response_late: Iterable[int] = (),
) -> Summary:
    """The summary of `facts` (the conversations created in [since, until)); hours of
    day in `tz`; SLA time on `clock` (default: always open); `next_response_late`: the
    conversations that missed a next-response target (gateway/desk/extras.py)."""
    f = facts if isinstance(facts, FactColumns) else FactColumns.of(facts)
    end_ms = int(min(until, now).timestamp() * 1000)
    created = f.created_at.astype(np.float64)
    handed = known(f.handover_at)
    resolved = known(f.resolved_at)
    bot = ~handed & (resolved | known(f.closed_at))
    # The agent's resolutions by how: its `how` (none: confirmed), or closed.
    kinds = np.where(resolved[bot], f.resolved_how[bot], "closed").tolist()
    how = _counted((k or "confirmed" for k in kinds),
                   {"confirmed": 0, "assumed": 0, "closed": 0})  # fmt: skip
    replied = handed & known(f.rep_reply_at)
    done_at = np.where(known(f.closed_at), f.closed_at, f.resolved_at)
    done = known(done_at)
    rated = known(f.score) & (f.score >= 1) & (f.score <= 5)
    scores = np.bincount(f.score[rated].astype(np.int64), minlength=6)
    count, n_rated = len(f), int(rated.sum())
    total_score = int(scores @ np.arange(6))
    sla, breaches = _sla(
        f, handed, end_ms, first_response_s, resolution_s, clock or _ALWAYS, at_risk_share,
        next_response_late,
    )
    return Summary(
        since=since,
        until=until,
        conversations=count,
        by_channel=_counted(f.channel.tolist(), {c.value: 0 for c in CHANNELS}),
        bot_resolved=int(bot.sum()),
        bot_resolved_how=how,
        handed_over=int(handed.sum()),
        resolution_rate=_ratio(int(bot.sum()), count),
        handover_rate=_ratio(int(handed.sum()), count),
        first_response_seconds=_spread((f.rep_reply_at[replied] - f.handover_at[replied]) / 1000),
        resolution_seconds=_spread((done_at[done] - created[done]) / 1000),
        next_response_seconds=_spread((f.replied_at - f.asked_at) / 1000),
        queue_wait_seconds=_spread(f.queue_wait_ms[known(f.queue_wait_ms)] / 1000),
        handle_seconds=_spread(f.handle_ms[known(f.handle_ms)] / 1000),
        by_hour=_by_hour(f.created_at, tz),
        csat=Csat(
            count=n_rated,
            average=round(total_score / n_rated, 2) if n_rated else None,
            distribution={str(s): int(scores[s]) for s in range(1, 6)},
        ),
        sla_breaches=breaches,
        sla=sla,
    )


def outreach_csv_rows(report: OutreachReport | None) -> list[tuple[str, str]]:
    """The outreach section as (figure, value) rows (`outreach.sent`, ...)."""
    if report is None:
        return []
    rows = [(f"outreach.{k}", str(v)) for k, v in report.model_dump().items()
            if k != "by_channel"]  # fmt: skip
    rows += [(f"outreach.sent.{c}", str(n)) for c, n in report.by_channel.items()]
    return rows


def csv_rows(summary: Summary) -> list[tuple[str, str]]:
    """The summary as (figure, value) rows, for a CSV export."""
    out: list[tuple[str, str]] = []

    def put(name: str, value: object) -> None:
        out.append((name, "" if value is None else str(value)))

    put("since", summary.since.isoformat())
    put("until", summary.until.isoformat())
    put("conversations", summary.conversations)
    for channel, count in summary.by_channel.items():
        put(f"conversations.{channel}", count)
    for hour, count in enumerate(summary.by_hour):
        put(f"conversations.hour_{hour:02d}", count)
    put("bot_resolved", summary.bot_resolved)
    for how, count in summary.bot_resolved_how.items():
        put(f"bot_resolved.{how}", count)
    put("handed_over", summary.handed_over)
    put("resolution_rate", summary.resolution_rate)
    put("handover_rate", summary.handover_rate)
    for name in SPEED:
        spread: Percentiles = getattr(summary, name)
        put(f"{name}.p50", spread.p50)
        put(f"{name}.p90", spread.p90)
        put(f"{name}.count", spread.count)
    put("csat.count", summary.csat.count)
    put("csat.average", summary.csat.average)
    for score, count in summary.csat.distribution.items():
        put(f"csat.score_{score}", count)
    put("sla_breaches", summary.sla_breaches)
    out.extend(outreach_csv_rows(summary.outreach))
    put("sla.first_response", summary.sla.first_response)
    put("sla.resolution", summary.sla.resolution)
    out += cost_csv_rows(summary.cost)
    put("sla.at_risk", summary.sla.at_risk)
    out += extras_csv_rows(summary)
    return out


def extras_csv_rows(summary: Summary) -> list[tuple[str, str]]:
    """The extra sections (gateway/desk/extras.py) as (figure, value) rows."""
    out: list[tuple[str, str]] = [("sla.next_response", str(summary.sla.next_response))]
    if summary.messages is not None:
        m = summary.messages
        out += [("messages.inbound", str(m.inbound)), ("messages.outbound", str(m.outbound))]
        out += [(f"messages.{c}.{d}", str(n)) for c, pair in m.by_channel.items()
                for d, n in pair.items()]  # fmt: skip
        out += [(f"messages.{d}.hour_{h:02d}", str(n)) for d, hours in m.by_hour.items()
                for h, n in enumerate(hours)]  # fmt: skip
    out += [(f"handed_over_why.{k}", str(n)) for k, n in (summary.handed_over_why or {}).items()]
    for name, groups in (("channel", summary.csat_by_channel), ("queue", summary.csat_by_queue)):
        for key, g in (groups or {}).items():
            out += [(f"csat.{name}.{key or '-'}.count", str(g.count)),
                    (f"csat.{name}.{key or '-'}.average", "" if g.average is None
                     else str(g.average))]  # fmt: skip
    for r in summary.csat_by_rep or []:
        out += [(f"csat.rep.{r.rep_id}.name", r.name), (f"csat.rep.{r.rep_id}.count", str(r.count)),
                (f"csat.rep.{r.rep_id}.average", "" if r.average is None else str(r.average))]
    return out


__all__ = [
    "CHANNELS", "SPEED", "Csat", "Percentiles", "SlaFigures", "Summary", "csv_rows", "percentile",
    "summarize",
]  # fmt: skip
