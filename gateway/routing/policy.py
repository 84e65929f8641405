"""Pure routing policy: priority, wait estimates, business hours, skills."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from datetime import datetime, time
from zoneinfo import ZoneInfo

from gateway.models import HandoffBrief, Sentiment

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# Priority points. Waiting time ages an entry by one point per 10 s, so an angry
# customer (30) is served before a calm one (10) who arrived up to ~3 minutes
# earlier, and nobody waits behind newer arrivals for ever.
SENTIMENT_POINTS = {
    Sentiment.ANGRY: 30,
    Sentiment.NEGATIVE: 20,
    Sentiment.NEUTRAL: 10,
    Sentiment.POSITIVE: 5,
}
TIER_POINTS = {"gold": 20, "silver": 10, "standard": 0}
AGING_S_PER_POINT = 10.0


def base_priority(brief: HandoffBrief | None, tier: str | None) -> int:
    """Priority from the brief's sentiment and the customer's tier (when known)."""
    points = SENTIMENT_POINTS[brief.sentiment if brief else Sentiment.NEUTRAL]
    return points + TIER_POINTS.get(tier or "", 0)


def effective_priority(base: int, waited_s: float) -> float:
    """`base` aged by waiting time: what entries are ordered by when offered."""
    return base + max(waited_s, 0.0) / AGING_S_PER_POINT


def estimate_wait_s(handle_times: Sequence[float], ahead: int, staffed: int) -> float | None:
    """Expected wait with `ahead` entries before this one and `staffed` reps who serve the
    queue (online, available or busy): the median handle time times the rounds of work
    ahead. None without data or without staff: no estimate is better than a wrong one."""
    if not handle_times or staffed <= 0:
        return None
    median = statistics.median(handle_times)
    return median * (ahead // staffed + 1)


def describe_wait(seconds: float | None) -> str | None:
    """`about 4 minutes`; None when there is no estimate."""
    if seconds is None:
        return None
    minutes = max(1, round(seconds / 60))
    return "about 1 minute" if minutes == 1 else f"about {minutes} minutes"


Hours = dict[int, tuple[time, time]]


def parse_hours(spec: Mapping[str, str]) -> Hours:
    """`{"mon": "09:00-17:00"}` -> weekday index -> (open, close). ValueError names the day."""
    hours: Hours = {}
    for day, span in spec.items():
        key = day.strip().lower()[:3]
        if key not in DAYS:
            raise ValueError(f"unknown weekday {day!r} (use mon..sun)")
        try:
            start, end = (time.fromisoformat(part.strip()) for part in span.split("-"))
        except ValueError as exc:
            raise ValueError(f"{day}: hours must look like 09:00-17:00, got {span!r}") from exc
        if end <= start:
            raise ValueError(f"{day}: closing time must be after opening time")
        hours[DAYS.index(key)] = (start, end)
    return hours


def is_open(hours: Hours, tz: ZoneInfo, now: datetime) -> bool:
    """Always open without configured hours."""
    if not hours:
        return True
    local = now.astimezone(tz)
    span = hours.get(local.weekday())
    return span is not None and span[0] <= local.time().replace(tzinfo=None) < span[1]


def can_serve(rep_skills: Sequence[str], queue_skills: Sequence[str]) -> bool:
    return set(queue_skills) <= set(rep_skills)


__all__ = [
    "base_priority",
    "can_serve",
    "describe_wait",
    "effective_priority",
    "estimate_wait_s",
    "is_open",
    "parse_hours",
]
