"""Business-hours arithmetic and SLA status (gateway/desk/sla.py): overnight,
weekends, DST changes, deadlines, at risk and breached."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.desk.sla import BusinessClock, SlaState, timer, worst

PARIS = "Europe/Paris"
WEEKDAYS = {d: "09:00-17:00" for d in ("mon", "tue", "wed", "thu", "fri")}
TZ = ZoneInfo(PARIS)


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=TZ)  # type: ignore[misc]


def test_always_open_without_hours_is_wall_clock() -> None:
    clock = BusinessClock.of({}, "UTC")
    a = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)
    assert clock.elapsed(a, a + timedelta(hours=5)) == 5 * 3600
    assert clock.elapsed(a, a - timedelta(hours=1)) == 0
    assert clock.deadline(a, 90) == a + timedelta(seconds=90)


def test_within_one_day_and_across_a_night() -> None:
    clock = BusinessClock.of(WEEKDAYS, PARIS)
    # Tuesday 10:00 -> 11:30: all open.
    assert clock.elapsed(local(2026, 1, 6, 10), local(2026, 1, 6, 11, 30)) == 5400
    # Tuesday 16:00 -> Wednesday 10:00: one hour on each side of the night.
    assert clock.elapsed(local(2026, 1, 6, 16), local(2026, 1, 7, 10)) == 7200
    # Before opening to after closing: the whole day.
    assert clock.elapsed(local(2026, 1, 6, 6), local(2026, 1, 6, 20)) == 8 * 3600
    # Entirely at night: nothing.
    assert clock.elapsed(local(2026, 1, 6, 18), local(2026, 1, 7, 8, 59)) == 0


def test_a_weekend_does_not_count() -> None:
    clock = BusinessClock.of(WEEKDAYS, PARIS)
    # Friday 16:30 -> Monday 09:30: half an hour Friday, half an hour Monday.
    assert clock.elapsed(local(2026, 1, 9, 16, 30), local(2026, 1, 12, 9, 30)) == 3600
    # A 2-hour target set Friday 16:00 falls due Monday 10:00.
    due = clock.deadline(local(2026, 1, 9, 16), 7200)
    assert due == local(2026, 1, 12, 10).astimezone(UTC)
    # Started on Saturday: the clock starts Monday at opening.
    assert clock.deadline(local(2026, 1, 10, 12), 60) == local(2026, 1, 12, 9, 1).astimezone(UTC)


def test_a_full_week_counts_five_days() -> None:
    clock = BusinessClock.of(WEEKDAYS, PARIS)
    start = local(2026, 2, 2, 0)  # a Monday
    assert clock.elapsed(start, start + timedelta(days=7)) == 5 * 8 * 3600
    assert clock.elapsed(start, start + timedelta(days=28)) == 20 * 8 * 3600


def test_dst_changes_keep_local_opening_hours() -> None:
    clock = BusinessClock.of({"sun": "01:00-05:00", "mon": "09:00-17:00"}, PARIS)
    # 29 March 2026: clocks jump from 02:00 to 03:00 in Paris; 01:00-05:00 is 3 hours.
    spring = local(2026, 3, 29, 0)
    assert clock.elapsed(spring, spring + timedelta(days=1)) == 3 * 3600
    # 25 October 2026: 03:00 goes back to 02:00; 01:00-05:00 is 5 hours.
    autumn = local(2026, 10, 25, 0)
    assert clock.elapsed(autumn, autumn + timedelta(days=1)) == 5 * 3600
    # Monday after the change opens at 09:00 local, which is 07:00 UTC in summer time.
    monday = clock.deadline(local(2026, 3, 29, 6), 60)
    assert monday == datetime(2026, 3, 30, 7, 1, tzinfo=UTC)
    # And at 08:00 UTC in winter time.
    assert clock.deadline(local(2026, 10, 25, 6), 60) == datetime(2026, 10, 26, 8, 1, tzinfo=UTC)


def test_deadline_and_elapsed_agree() -> None:
    clock = BusinessClock.of(WEEKDAYS, "America/New_York")
    start = datetime(2026, 3, 6, 20, 17, tzinfo=UTC)  # a Friday, across a DST weekend
    for seconds in (1, 600, 8 * 3600, 8 * 3600 + 1, 3 * 86400):
        due = clock.deadline(start, seconds)
        assert due is not None
        assert clock.elapsed(start, due) == pytest.approx(seconds)


def test_bad_hours_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown weekday"):
        BusinessClock.of({"funday": "09:00-10:00"}, PARIS)


def test_status_ok_at_risk_breached_and_done() -> None:
    clock = BusinessClock.of({}, "UTC")
    start = datetime(2026, 5, 1, 12, tzinfo=UTC)
    at = lambda s: start + timedelta(seconds=s)  # noqa: E731
    assert timer(clock, "first_response", 400, start, at(100)).state is SlaState.OK
    risky = timer(clock, "first_response", 400, start, at(301))
    assert risky.state is SlaState.AT_RISK and risky.left_s == 99
    assert risky.deadline == at(400)
    assert timer(clock, "first_response", 400, start, at(300)).state is SlaState.OK
    late = timer(clock, "first_response", 400, start, at(460))
    assert late.state is SlaState.BREACHED and late.left_s == -60
    # Another share: at risk with less than half left.
    assert timer(clock, "x", 400, start, at(201), at_risk_share=0.5).state is SlaState.AT_RISK
    # Met in time: ok, whatever the time now; met late: breached.
    met = timer(clock, "first_response", 400, start, at(9999), done_at=at(350))
    assert met.state is SlaState.OK and met.done
    assert timer(clock, "r", 400, start, at(9999), done_at=at(401)).state is SlaState.BREACHED
    # The item shows its most urgent running timer.
    shown = worst([met, risky, timer(clock, "resolution", 4000, start, at(301))])
    assert shown == risky
    assert worst([met]) is None


def test_the_summary_counts_breaches_and_at_risk_in_business_hours() -> None:
    from gateway.desk.store import ConversationFacts
    from gateway.desk.summary import summarize

    clock = BusinessClock.of(WEEKDAYS, PARIS)
    friday = local(2026, 1, 9, 16, 30)
    ms = int(friday.timestamp() * 1000)
    hour = 3_600_000

    def handed(cid: int, reply_after_ms: int | None) -> ConversationFacts:
        reply = None if reply_after_ms is None else ms + reply_after_ms
        return ConversationFacts(cid, "webchat", "with_rep", "general", ms, None, ms, None,
                                 None, reply, None)  # fmt: skip

    facts = [
        handed(1, 66 * hour),  # answered Monday 10:30: 1.5 business hours, 66 wall-clock
        handed(2, None),  # not answered by Monday 09:20: 50 business minutes of 60
        handed(3, 10 * 60_000),  # answered in 10 minutes
    ]
    monday = local(2026, 1, 12, 9, 20)
    since, until = friday - timedelta(hours=1), monday
    kw: dict[str, object] = {"first_response_s": {"general": 3600}, "resolution_s": {}}
    s = summarize(facts, since, until, now=monday, clock=clock, **kw)  # type: ignore[arg-type]
    assert (s.sla_breaches, s.sla.first_response, s.sla.at_risk) == (1, 1, 1)
    # Counted in wall-clock time (always open), 2 is breached too and none at risk.
    s = summarize(facts, since, until, now=monday, **kw)  # type: ignore[arg-type]
    assert (s.sla_breaches, s.sla.at_risk) == (2, 0)


def test_the_span_table_agrees_with_counting_day_by_day() -> None:
    import random
    from datetime import date as Date
    from datetime import time as Time

    hours = {"mon": "08:30-12:00", "tue": "09:00-17:00", "sat": "01:00-05:00", "sun": "10:00-11:00"}
    clock = BusinessClock.of(hours, PARIS)
    spans = {0: (Time(8, 30), Time(12)), 1: (Time(9), Time(17)), 5: (Time(1), Time(5)),
             6: (Time(10), Time(11))}  # fmt: skip

    def by_day(a: float, b: float) -> float:
        day: Date = datetime.fromtimestamp(a, UTC).astimezone(TZ).date() - timedelta(days=1)
        total = 0.0
        while day <= datetime.fromtimestamp(b, UTC).astimezone(TZ).date():
            if (span := spans.get(day.weekday())) is not None:
                opens = datetime.combine(day, span[0], tzinfo=TZ).timestamp()
                closes = datetime.combine(day, span[1], tzinfo=TZ).timestamp()
                total += max(0.0, min(b, closes) - max(a, opens))
            day += timedelta(days=1)
        return total

    rng = random.Random(7)
    base = local(2026, 1, 1).timestamp()
    # Out of order over two years (the table grows both ways), across both DST changes.
    for _ in range(2000):
        a = base + rng.uniform(-200, 500) * 86400
        b = a + rng.choice([rng.uniform(0, 7200), rng.uniform(0, 40 * 86400)])
        assert clock.elapsed_s(a, b) == pytest.approx(by_day(a, b), abs=1e-6)
