"""The reports' filters from a query string: `channel`, `queue`, `rep` and `team`, each
repeated or comma-separated (`channel=sms,email` or `channel=sms&channel=email`);
values of one filter are alternatives, different filters must all match.

A bad value is refused (`ReportFilterError`, answered 400) with what is allowed:
a channel not among webchat, sms, email, phone; a queue not in GATEWAY_QUEUES; a
rep id that is not a number or no rep's; a team no admin created. A team counts the
conversations any of its reps worked: it becomes `rep_ids`, and with `rep` given too,
only the team's reps among them count.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, NamedTuple

from gateway.desk.summary import CHANNELS
from gateway.errors import GatewayError

MAX_VALUES = 50  # per filter: a query string is not a bulk export
CHANNEL_NAMES = tuple(c.value for c in CHANNELS)  # the customers' channels


class ReportFilterError(GatewayError):
    """A filter's value is not one the reports know (400)."""


class ReportFilters(NamedTuple):
    """None: not filtered; a set: one of these."""

    channels: set[str] | None = None
    queues: set[str] | None = None
    rep_ids: set[int] | None = None
    teams: set[str] | None = None  # as asked (already turned into `rep_ids`)

    def as_query(self) -> dict[str, str]:
        """The filters given, as query parameters (comma-separated, sorted)."""
        out = {}
        for name, values in (("channel", self.channels), ("queue", self.queues),
                             ("rep", self.rep_ids), ("team", self.teams)):  # fmt: skip
            if values is not None:
                out[name] = ",".join(str(v) for v in sorted(values))
        return out


def _values(query: Mapping[str, Any], name: str) -> list[str] | None:
    getall = getattr(query, "getall", None)
    raw = getall(name, []) if getall is not None else [query[name]] if name in query else []
    values = [v.strip() for item in raw for v in str(item).split(",") if v.strip()]
    if not raw:
        return None
    if not values:
        raise ReportFilterError(f"{name}: empty (leave it out to count every {name})")
    if len(values) > MAX_VALUES:
        raise ReportFilterError(f"{name}: at most {MAX_VALUES} values")
    return values


async def parse_filters(
    query: Mapping[str, Any],
    *,
    queues: Iterable[str],
    rep_exists: Callable[[int], Awaitable[bool]],
    team_reps: Callable[[str], Awaitable[list[int] | None]],
) -> ReportFilters:
    """The filters of `query` (an aiohttp MultiDict or a plain mapping), checked."""
    channels = _values(query, "channel")
    for channel in channels or ():
        if channel not in CHANNEL_NAMES:
            raise ReportFilterError(
                f"channel: unknown channel {channel[:40]!r}; one of {', '.join(CHANNEL_NAMES)}"
            )
    known = sorted(queues)
    names = _values(query, "queue")
    for queue in names or ():
        if queue not in known:
            raise ReportFilterError(
                f"queue: unknown queue {queue[:60]!r}; known (GATEWAY_QUEUES): {', '.join(known)}"
            )
    reps = _values(query, "rep")
    rep_ids: set[int] | None = None
    if reps is not None:
        rep_ids = set()
        for raw in reps:
            if not raw.isascii() or not raw.isdigit() or not 0 < int(raw) < 2**31:
                raise ReportFilterError(f"rep: not a rep id: {raw[:40]!r}")
            if not await rep_exists(int(raw)):
                raise ReportFilterError(f"rep: no rep {int(raw)}")
            rep_ids.add(int(raw))
    teams = _values(query, "team")
    if teams is not None:
        members: set[int] = set()
        for team in teams:
            ids = await team_reps(team)
            if ids is None:
                raise ReportFilterError(f"team: no team {team[:100]!r}")
            members.update(ids)
        rep_ids = members if rep_ids is None else rep_ids & members
    return ReportFilters(
        channels=None if channels is None else set(channels),
        queues=None if names is None else set(names),
        rep_ids=rep_ids,
        teams=None if teams is None else set(teams),
    )


__all__ = ["ReportFilterError", "ReportFilters", "parse_filters"]
