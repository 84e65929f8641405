"""SLA arithmetic, pure: elapsed business seconds between two instants, the instant a
target is reached, and an item's SLA status (ok, at risk, breached).

Business hours are GATEWAY_BUSINESS_HOURS in GATEWAY_BUSINESS_TIMEZONE (empty: always
open, so business time is wall-clock time). Each open day's span is turned into UTC
instants with `zoneinfo`, so a day with a DST change has the length the clocks say
(a 09:00-17:00 day is 8 hours either way; a 01:00-05:00 day on a spring-forward night
at 02:00 is 3 hours). Elapsed time reads a table of open spans with the open
seconds before each (built once for the dates asked, then a bisection per call): a
report over 100,000 conversations asks for the same few weeks again and again.
"""

from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from gateway.models import Frozen
from gateway.routing.policy import Hours, parse_hours

MAX_DAYS = 3660  # a deadline further than ten years away is "never" (no open day found)
COVER_AHEAD = timedelta(days=31)  # the span table grows by a month at least
DEFAULT_AT_RISK_SHARE = 0.25
Floats = NDArray[np.float64]


class BusinessClock:
    """Counts time only while the business is open."""

    def __init__(self, hours: Hours, tz: ZoneInfo) -> None:
        self.hours = hours
        self.tz = tz
        self._spans = functools.lru_cache(maxsize=4096)(self._span)
        self._starts: list[float] = []
        self._ends: list[float] = []
        self._before: list[float] = []
        self._lo, self._hi = math.inf, -math.inf

    @classmethod
    def of(cls, spec: Mapping[str, str], timezone: str) -> BusinessClock:
        """From the settings' form: `{"mon": "09:00-17:00"}` and an IANA zone name."""
        return cls(parse_hours(spec), ZoneInfo(timezone))

    @property
    def always_open(self) -> bool:
        return not self.hours

    def _span(self, day: date) -> tuple[float, float] | None:
        """The day's open span as POSIX seconds, or None when closed."""
        span = self.hours.get(day.weekday())
        if span is None:
            return None
        start = datetime.combine(day, span[0], tzinfo=self.tz).astimezone(UTC)
        end = datetime.combine(day, span[1], tzinfo=self.tz).astimezone(UTC)
        return start.timestamp(), end.timestamp()

    def _days(self, start: datetime) -> date:
        # The local date before `start`'s: a span in UTC may begin on the previous
        # local day only if hours cross midnight, which parse_hours refuses; one day
        # back keeps this right whatever the offset.
        return start.astimezone(self.tz).date() - timedelta(days=1)

    def elapsed(self, start: datetime, end: datetime) -> float:
        """Business seconds in [start, end] (0 when end is not after start)."""
        return self.elapsed_s(start.timestamp(), end.timestamp())

    def elapsed_s(self, start: float, end: float) -> float:
        """`elapsed` on POSIX seconds (what reports hold, divided by 1000)."""
        if end <= start:
            return 0.0
        if self.always_open:
            return end - start
        self._cover(start, end)
        return self._open_until(end) - self._open_until(start)

    def elapsed_many(self, start: Floats, end: Floats) -> Floats:
        """`elapsed_s` of each (start, end) pair of two arrays, the same operations
        on numpy's float64 (a report's 100,000 at once)."""
        later = end > start
        if self.always_open:
            return np.where(later, end - start, 0.0)
        if not later.any():
            return np.zeros(len(start))
        self._cover(float(start[later].min()), float(end[later].max()))
        starts, ends = np.array(self._starts), np.array(self._ends)
        before = np.array(self._before)

        def open_until(at: Floats) -> Floats:
            i = np.searchsorted(starts, at, side="right") - 1
            j = np.maximum(i, 0)
            value = before[j] + np.minimum(at - starts[j], ends[j] - starts[j])
            return np.where(i < 0, 0.0, value)

        return np.where(later, open_until(end) - open_until(start), 0.0)

    def _open_until(self, at: float) -> float:
        """Open seconds from the table's start to `at` (inside the table)."""
        i = bisect.bisect_right(self._starts, at) - 1
        if i < 0:
            return 0.0
        return self._before[i] + min(at - self._starts[i], self._ends[i] - self._starts[i])

    def _cover(self, start: float, end: float) -> None:
        """Make the table of open spans (and open seconds before each) cover [start,
        end]: a report asks for 100,000 spans, each a bisection once it is built."""
        if self._lo <= start and end <= self._hi:
            return
        lo, hi = min(start, self._lo), max(end, self._hi)
        first = datetime.fromtimestamp(lo, UTC).astimezone(self.tz).date() - timedelta(days=1)
        last = datetime.fromtimestamp(hi, UTC).astimezone(self.tz).date() + COVER_AHEAD
        starts, ends, before, total = [], [], [], 0.0
        day = first
        while day <= last:
            span = self._spans(day)
            if span is not None:
                starts.append(span[0])
                ends.append(span[1])
                before.append(total)
                total += span[1] - span[0]
            day += timedelta(days=1)
        self._starts, self._ends, self._before = starts, ends, before
        # Open spans never cross midnight: local midnights bound what the table holds.
        self._lo = datetime.combine(first, time(0), tzinfo=self.tz).timestamp()
        self._hi = datetime.combine(last, time(0), tzinfo=self.tz).timestamp()

    def deadline(self, start: datetime, seconds: float) -> datetime | None:
        """The instant `seconds` business seconds after `start` (None: never open)."""
        if self.always_open:
            return start + timedelta(seconds=seconds)
        left = seconds
        at = start.timestamp()
        day = self._days(start)
        for _ in range(MAX_DAYS):
            span = self._spans(day)
            if span is not None and span[1] > at:
                begin = max(at, span[0])
                if begin + left <= span[1]:
                    return datetime.fromtimestamp(begin + left, UTC)
                left -= span[1] - begin
            day += timedelta(days=1)
        return None


class SlaState(StrEnum):
    OK = "ok"
    AT_RISK = "at_risk"
    BREACHED = "breached"


class SlaTimer(Frozen):
    """One running (or met) target of one item."""

    target: str = Field(description="first_response | next_response | resolution")
    target_s: float
    started_at: datetime
    deadline: datetime | None = Field(description="When the target is reached (None: never).")
    elapsed_s: float = Field(description="Business seconds used so far (or until done).")
    left_s: float = Field(description="Business seconds left; negative: overdue by that much.")
    state: SlaState
    done: bool = Field(description="Met (answered, closed): no longer running.")


def timer(
    clock: BusinessClock, target: str, target_s: float, started_at: datetime, now: datetime,
    *, done_at: datetime | None = None, at_risk_share: float = DEFAULT_AT_RISK_SHARE,
) -> SlaTimer:  # fmt: skip
    """The status of a target started at `started_at`: breached past the target, at
    risk with less than `at_risk_share` of it left, else ok. A done item is judged by
    its `done_at` (it can no longer become at risk)."""
    end = done_at if done_at is not None else now
    used = clock.elapsed(started_at, end)
    left = target_s - used
    if left < 0:
        state = SlaState.BREACHED
    elif done_at is None and left < target_s * at_risk_share:
        state = SlaState.AT_RISK
    else:
        state = SlaState.OK
    return SlaTimer(
        target=target, target_s=target_s, started_at=started_at,
        deadline=clock.deadline(started_at, target_s), elapsed_s=round(used, 3),
        left_s=round(left, 3), state=state, done=done_at is not None,
    )  # fmt: skip


_RANK = {SlaState.OK: 0, SlaState.AT_RISK: 1, SlaState.BREACHED: 2}


def worst(timers: list[SlaTimer]) -> SlaTimer | None:
    """The running timer to show for an item: breached before at risk before ok, then
    the least time left; None when no target runs."""
    running = [t for t in timers if not t.done]
    if not running:
        return None
    return max(running, key=lambda t: (_RANK[t.state], -t.left_s))


__all__ = [
    "DEFAULT_AT_RISK_SHARE", "BusinessClock", "SlaState", "SlaTimer", "timer", "worst",
]  # fmt: skip
