"""The shapes of Twilio's identifiers and of the webhook fields we rely on.

Twilio's request signature is HMAC over the URL and each parameter's name and
value concatenated *without separators*, so a captured webhook can be re-sent
with characters moved between a value and the next name ("boundary shift"):
`MessageSid=SMx…` + `NumMedia=0` signs the same as `MessageSid=SMx…NumMedia0`
with `NumMedia` dropped. Every field we act on therefore has a fixed shape
checked here: a sid is its two-letter prefix and 32 hex digits (it cannot grow
or shrink), counts are short decimal numbers, and the repeated sids of one
webhook must agree. A shifted webhook then fails its shape (400) instead of
being taken for a new message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from gateway.errors import ProtocolError

_SID = re.compile(r"[A-Z]{2}[0-9a-fA-F]{32}")
_COUNT = re.compile(r"[0-9]{1,2}")


def is_sid(value: str, *prefixes: str) -> bool:
    """Whether `value` is a Twilio sid with one of `prefixes` (e.g. "SM", "MM")."""
    return _SID.fullmatch(value) is not None and value[:2] in prefixes


def sid(form: Mapping[str, str], names: tuple[str, ...], *prefixes: str) -> str:
    """The sid that the fields `names` carry: at least one present, each present one
    well-formed and all equal (ProtocolError otherwise)."""
    values = {form[name] for name in names if form.get(name, "")}
    if not values:
        raise ProtocolError("missing_field", f"the webhook has no {' or '.join(names)}")
    if len(values) > 1:
        raise ProtocolError("bad_field", f"{', '.join(names)} disagree")
    value = values.pop()
    if not is_sid(value, *prefixes):
        raise ProtocolError("bad_field", f"{names[0]} is not a {'/'.join(prefixes)} sid")
    return value


def count(form: Mapping[str, str], name: str, maximum: int) -> int:
    """A required small count (`NumMedia`): 0 to `maximum` in plain decimal digits."""
    raw = form.get(name)
    if raw is None or _COUNT.fullmatch(raw) is None or int(raw) > maximum:
        raise ProtocolError("bad_field", f"{name} is not a count from 0 to {maximum}")
    return int(raw)


__all__ = ["count", "is_sid", "sid"]
