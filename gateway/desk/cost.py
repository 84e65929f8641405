"""The reports' cost section: what the period's conversations consumed, priced by
GATEWAY_COST_RATES (docs/reports.md, "Cost").

A conversation's cost is the sum of its usage rows (gateway/usage.py) and of its
reps' handling time (queue entries a rep took, from taking them to their close,
hand-back or transfer; entries still held are not counted yet), each times its
rate:

    llm   = prompt tokens / 1000 x llm_prompt_per_1k_tokens
          + completion tokens / 1000 x llm_completion_per_1k_tokens
    stt   = seconds recognised / 60 x stt_per_minute
    tts   = seconds synthesised / 60 x tts_per_minute
    sms   = segments x sms_segment
    call  = call seconds / 60 x call_minute
    rep   = rep handling seconds / 60 x rep_minute

Cost per resolved conversation, by channel: the cost of the conversations the
agent resolved alone (as `bot_resolved` counts them) over their count, and the
same for those a person resolved (handed over, then closed). Amounts are rounded
to 6 decimals (token prices are small fractions of a cent).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from pydantic import Field

from gateway.desk.store import ConversationFacts
from gateway.models import Frozen
from gateway.settings_checks import COST_RATE_NAMES

KINDS = ("llm", "stt", "tts", "sms", "call", "rep")
CHANNELS = ("webchat", "sms", "email", "phone")  # as the summary's by_channel
TOP = 10  # the costliest conversations listed
PLACES = 6


class ConversationUsage(NamedTuple):
    """One conversation's summed usage (store reads; times in ms, call time in s)."""

    llm_prompt_tokens: int = 0
    llm_completion_tokens: int = 0
    stt_ms: int = 0
    tts_ms: int = 0
    sms_segments: int = 0
    call_s: int = 0
    rep_ms: int = 0


class UsageRead(NamedTuple):
    """A range of conversations' usage as the store reads it for the cost section."""

    totals: ConversationUsage  # summed over the range, reps' handling time included
    cost_of: dict[int, float]  # conversation id -> the cost of its usage rows (priced in SQL)
    rep_ms: dict[int, int]  # conversation id -> its reps' handling time


class Quantities(Frozen):
    llm_prompt_tokens: int = Field(description="Prompt tokens sent to the language model.")
    llm_completion_tokens: int = Field(description="Tokens the language model wrote.")
    stt_seconds: float = Field(description="Caller speech recognised (transcribed).")
    tts_seconds: float = Field(description="Speech synthesised for callers.")
    sms_segments: int = Field(description="SMS segments received and sent.")
    call_minutes: float = Field(description="Call time, from Twilio's CallDuration.")
    rep_minutes: float = Field(description="Reps' handling time (taken to released).")


class Resolved(Frozen):
    resolved: int = Field(description="Conversations resolved this way.")
    cost: float = Field(description="Their total cost.")
    per_resolved: float | None = Field(description="cost / resolved (null: none resolved).")


class ChannelCost(Frozen):
    agent: Resolved = Field(description="Resolved by the agent alone.")
    rep: Resolved = Field(description="Handed over and closed by a person.")


class ConversationCost(Frozen):
    id: int
    channel: str
    cost: float


class Cost(Frozen):
    """What the period's conversations cost."""

    currency: str = Field(description="GATEWAY_COST_CURRENCY.")
    rates: dict[str, float] = Field(description="GATEWAY_COST_RATES (every rate; 0: not set).")
    quantities: Quantities
    total: float = Field(description="Total cost of the period's conversations.")
    by_kind: dict[str, float] = Field(description="Total by kind: llm, stt, tts, sms, call, rep.")
    per_conversation: float | None = Field(description="total / conversations.")
    by_channel: dict[str, ChannelCost] = Field(
        description="Cost per resolved conversation, by channel (webchat, sms, email, phone)."
    )
    costliest: list[ConversationCost] = Field(description=f"The {TOP} costliest conversations.")


def _money(x: float) -> float:
    return round(x, PLACES)


def _resolved(count: int, cost: float) -> Resolved:
    return Resolved(resolved=count, cost=_money(cost),
                    per_resolved=_money(cost / count) if count else None)  # fmt: skip


# Each usage field's kind and price per unit (rate name, divisor), in
# ConversationUsage's order.
_FIELDS = (
    ("llm", "llm_prompt_per_1k_tokens", 1000),
    ("llm", "llm_completion_per_1k_tokens", 1000),
    ("stt", "stt_per_minute", 60_000),
    ("tts", "tts_per_minute", 60_000),
    ("sms", "sms_segment", 1),
    ("call", "call_minute", 60),
    ("rep", "rep_minute", 60_000),
)


def unit_prices(rates: Mapping[str, float]) -> tuple[float, ...]:
    """The price of one unit of each ConversationUsage field (a token, a ms, ...)."""
    return tuple(rates.get(rate, 0.0) / per for _, rate, per in _FIELDS)


def cost_section(
    facts: Sequence[ConversationFacts], usage: UsageRead, rates: Mapping[str, float],
    currency: str,
) -> Cost:  # fmt: skip
    """The cost of the conversations in `facts` from their `usage` (read over their id
    range with `unit_prices(rates)`)."""
    prices = unit_prices(rates)
    by_kind = dict.fromkeys(KINDS, 0.0)
    for (kind, _, _), amount, price in zip(_FIELDS, usage.totals, prices, strict=True):
        by_kind[kind] += amount * price
    rep_price = prices[-1]
    cost_of = dict(usage.cost_of)
    for cid, ms in usage.rep_ms.items():
        cost_of[cid] = cost_of.get(cid, 0.0) + ms * rep_price
    counts: dict[tuple[str, str], int] = {}  # (channel, agent | rep) -> resolved
    costs: dict[tuple[str, str], float] = {}
    for f in facts:
        if f.handover_at is None:
            if f.resolved_at is None and f.closed_at is None:
                continue
            key = (f.channel, "agent")
        elif f.closed_at is not None:
            key = (f.channel, "rep")
        else:
            continue
        counts[key] = counts.get(key, 0) + 1
        costs[key] = costs.get(key, 0.0) + cost_of.get(f.id, 0.0)
    top = heapq.nsmallest(TOP, ((-c, cid) for cid, c in cost_of.items() if c > 0))
    channel_of = {f.id: f.channel for f in facts} if top else {}
    u = usage.totals
    total = sum(by_kind.values())
    return Cost(
        currency=currency,
        rates={name: rates.get(name, 0.0) for name in COST_RATE_NAMES},
        quantities=Quantities(
            llm_prompt_tokens=u.llm_prompt_tokens,
            llm_completion_tokens=u.llm_completion_tokens,
            stt_seconds=round(u.stt_ms / 1000, 3),
            tts_seconds=round(u.tts_ms / 1000, 3),
            sms_segments=u.sms_segments,
            call_minutes=round(u.call_s / 60, 4),
            rep_minutes=round(u.rep_ms / 60_000, 4),
        ),
        total=_money(total),
        by_kind={kind: _money(amount) for kind, amount in by_kind.items()},
        per_conversation=_money(total / len(facts)) if facts else None,
        by_channel={
            channel: ChannelCost(
                agent=_resolved(
                    counts.get((channel, "agent"), 0), costs.get((channel, "agent"), 0)
                ),
                rep=_resolved(counts.get((channel, "rep"), 0), costs.get((channel, "rep"), 0)),
            )
            for channel in (*CHANNELS, *sorted({c for c, _ in counts} - set(CHANNELS)))
        },
        costliest=[
            ConversationCost(id=cid, channel=channel_of.get(cid, ""), cost=_money(-c))
            for c, cid in top
        ],
    )


def cost_csv_rows(cost: Cost | None) -> list[tuple[str, str]]:
    """The cost section as (figure, value) rows for the CSV export."""
    if cost is None:
        return []
    rows = [("cost.currency", cost.currency), ("cost.total", str(cost.total)),
            ("cost.per_conversation", "" if cost.per_conversation is None
             else str(cost.per_conversation))]  # fmt: skip
    rows += [(f"cost.quantity.{k}", str(v)) for k, v in cost.quantities.model_dump().items()]
    rows += [(f"cost.kind.{k}", str(v)) for k, v in cost.by_kind.items()]
    for channel, ways in cost.by_channel.items():
        for how in ("agent", "rep"):
            r: Resolved = getattr(ways, how)
            prefix = f"cost.resolved.{channel}.{how}"
            rows += [(f"{prefix}.count", str(r.resolved)), (f"{prefix}.cost", str(r.cost)),
                     (f"{prefix}.per_resolved", "" if r.per_resolved is None
                      else str(r.per_resolved))]  # fmt: skip
    rows += [(f"cost.rate.{k}", str(v)) for k, v in cost.rates.items()]
    return rows


__all__ = [
    "ChannelCost", "ConversationCost", "ConversationUsage", "Cost", "Quantities", "Resolved",
    "UsageRead", "cost_csv_rows", "cost_section", "unit_prices",
]  # fmt: skip
