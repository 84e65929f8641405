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

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from gateway.desk.facts import FactColumns, Floats, known
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
    """Some conversations' usage as the store reads it for the cost section."""

    totals: ConversationUsage  # summed over them, reps' handling time included
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


def _cost_per_fact(ids: NDArray[np.int64], cost_of: Mapping[int, float]) -> Floats:
    """The cost of each conversation of `ids` (0.0 for one without usage)."""
    if not cost_of:
        return np.zeros(len(ids))
    have = np.fromiter(cost_of.keys(), dtype=np.int64, count=len(cost_of))
    costs = np.fromiter(cost_of.values(), dtype=np.float64, count=len(cost_of))
    order = np.argsort(have)
    have, costs = have[order], costs[order]
    at = np.minimum(np.searchsorted(have, ids), len(have) - 1)
    return np.where(have[at] == ids, costs[at], 0.0)


def _sum_in_order(values: Floats) -> float:
    """Their sum added one by one in order, as a loop would (numpy's sum pairs them)."""
    return float(np.cumsum(values)[-1]) if len(values) else 0.0


def cost_section(
    facts: FactColumns | Sequence[ConversationFacts], usage: UsageRead,
    rates: Mapping[str, float], currency: str,
) -> Cost:  # fmt: skip
    """The cost of the conversations in `facts` from their `usage` (read over their id
    range with `unit_prices(rates)`)."""
    f = facts if isinstance(facts, FactColumns) else FactColumns.of(facts)
    prices = unit_prices(rates)
    by_kind = dict.fromkeys(KINDS, 0.0)
    for (kind, _, _), amount, price in zip(_FIELDS, usage.totals, prices, strict=True):
        by_kind[kind] += amount * price
    rep_price = prices[-1]
    cost_of = dict(usage.cost_of)
    for cid, ms in usage.rep_ms.items():
        cost_of[cid] = cost_of.get(cid, 0.0) + ms * rep_price
    # Resolved by the agent alone, or handed over and closed by a person.
    handed = known(f.handover_at)
    closed = known(f.closed_at)
    ways = {"agent": ~handed & (known(f.resolved_at) | closed), "rep": handed & closed}
    fact_cost = _cost_per_fact(f.id, cost_of)
    counts: dict[tuple[str, str], int] = {}  # (channel, agent | rep) -> resolved
    costs: dict[tuple[str, str], float] = {}
    for channel in dict.fromkeys(f.channel[ways["agent"] | ways["rep"]].tolist()):
        on = f.channel == channel
        for way, mask in ways.items():
            if (n := int((on & mask).sum())) > 0:
                counts[channel, way] = n
                costs[channel, way] = _sum_in_order(fact_cost[on & mask])
    top = _costliest(cost_of)
    channel_of = {cid: str(f.channel[f.id == cid][0]) for _, cid in top if (f.id == cid).any()}
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
        per_conversation=_money(total / len(f)) if len(f) else None,
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


def _costliest(cost_of: Mapping[int, float]) -> list[tuple[float, int]]:
    """The TOP costliest conversations as (-cost, id), costliest first (ties: lower id)."""
    ids = np.fromiter(cost_of.keys(), dtype=np.int64, count=len(cost_of))
    negated = -np.fromiter(cost_of.values(), dtype=np.float64, count=len(cost_of))
    priced = negated < 0
    ids, negated = ids[priced], negated[priced]
    first = np.lexsort((ids, negated))[:TOP]
    return [(float(negated[i]), int(ids[i])) for i in first]


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
