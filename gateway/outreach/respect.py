"""What outreach respects besides opt-outs: quiet hours in the customer's local time,
and signed one-click unsubscribe links for email (RFC 8058)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from itsdangerous import BadSignature, URLSafeSerializer
from phonenumbers import timezone as phone_timezones

UNSUBSCRIBE_PATH = "/outreach/unsubscribe/"


def parse_window(spec: str) -> tuple[time, time] | None:
    """`"21:00-08:00"` -> (21:00, 08:00); empty -> None (already validated by Settings)."""
    if not spec:
        return None
    start, _, end = spec.partition("-")
    return time.fromisoformat(start), time.fromisoformat(end)


def zones_of(phone: str | None, fallback: str) -> list[ZoneInfo]:
    """The time zones a phone number's region spans (several for a US number whose
    area code is unknown), else `fallback` (BUSINESS_TIMEZONE)."""
    names: tuple[str, ...] = ()
    if phone:
        try:
            names = phone_timezones.time_zones_for_number(phonenumbers.parse(phone))
        except phonenumbers.NumberParseException:
            names = ()
    zones = []
    for name in names:
        try:
            zones.append(ZoneInfo(name))
        except (ZoneInfoNotFoundError, ValueError):
            continue  # "Etc/Unknown"
    return zones or [ZoneInfo(fallback)]


def quiet_until(now: datetime, zones: list[ZoneInfo], window: tuple[time, time] | None) -> (
    datetime | None
):  # fmt: skip
    """When the quiet window ends, if `now` (aware) is inside it in any of `zones`
    (a number that may be in several: wait until it is over in all of them); None
    when a message may go out now."""
    if window is None:
        return None
    start, end = window
    latest: datetime | None = None
    for zone in zones:
        local = now.astimezone(zone)
        t = local.time()
        inside = (start <= t or t < end) if start > end else (start <= t < end)
        if not inside:
            continue
        opens = datetime.combine(local.date(), end, tzinfo=zone)
        if opens <= local:
            opens = datetime.combine(local.date() + timedelta(days=1), end, tzinfo=zone)
        if latest is None or opens > latest:
            latest = opens
    return latest


class Unsubscribes:
    """Signed unsubscribe links: the address is in the link, signed with the gateway's
    secret, so a link cannot be made for someone else's address."""

    def __init__(self, secret: bytes, public_url: str) -> None:
        self._signer = URLSafeSerializer(secret, salt="outreach-unsubscribe")
        self._base = public_url.rstrip("/") + UNSUBSCRIBE_PATH

    def url(self, address: str) -> str:
        return self._base + str(self._signer.dumps(address.lower()))

    def address(self, token: str) -> str | None:
        """The address a link's token was made for, or None when it is not ours."""
        try:
            value = self._signer.loads(token)
        except BadSignature:
            return None
        return value if isinstance(value, str) else None

    def headers(self, address: str) -> dict[str, str]:
        """RFC 2369 / RFC 8058 headers of one outreach mail to `address`."""
        return {
            "List-Unsubscribe": f"<{self.url(address)}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }


__all__ = ["UNSUBSCRIBE_PATH", "Unsubscribes", "parse_window", "quiet_until", "zones_of"]
