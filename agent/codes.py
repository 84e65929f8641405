"""One-time codes: issued, remembered and checked without ever storing the code.

A code is 6 digits from `secrets`. What the conversation's agent state keeps is
a `Challenge`: where the code went, when it expires, how many tries are left,
and an HMAC of the code under a key derived from the gateway's secret
(`gateway.secrets.derive_key`), bound to the conversation, the target and the
expiry time. A leaked database therefore reveals no code, and a code works only
in the conversation that asked for it. A code works once (`used`), until its
expiry, and for a few tries; after that a new one must be asked for.

`TargetLimiter` caps the codes sent to one phone number or address per hour
and per day across every customer, so that many throw-away chats cannot flood
somebody's phone; it lives in memory (per process), while the per-customer cap
is counted durably in the store's events (agent/verify.py).
"""

from __future__ import annotations

import collections
import enum
import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

from gateway.models import Identity
from gateway.secrets import derive_key

CODE_DIGITS = 6
MAX_TARGETS = 50_000

Purpose = Literal["link", "confirm"]

_DIGITS = re.compile(rf"(?<!\d)(?<!\d[ -])(?:\d[ -]?){{{CODE_DIGITS - 1}}}\d(?![ -]?\d)")
_WORDS = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
_ANY_WORD = "|".join(_WORDS)
_SPOKEN = re.compile(
    rf"\b(?:(?:{_ANY_WORD})[\s,.-]+){{{CODE_DIGITS - 1}}}(?:{_ANY_WORD})\b", re.IGNORECASE
)


class Check(enum.StrEnum):
    """The outcome of one try at a code."""

    OK = "ok"
    WRONG = "wrong"
    EXPIRED = "expired"
    LOCKED = "locked"  # no tries left
    USED = "used"


class Challenge(BaseModel):
    """A code sent and not yet done with (what agent state keeps; no code in it)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    purpose: Purpose  # link the target to the customer, or confirm an account action
    to: str  # the target identity's key, e.g. "phone:+15551234567"
    digest: str  # HMAC-SHA256 of the code (hex)
    expires_at: datetime
    attempts: int = 0  # wrong tries so far
    resume: str | None = None  # (confirm) the intent to carry on with
    account: str | None = None  # the backend account the target is on record for
    used: bool = False

    @property
    def target(self) -> Identity:
        return Identity.parse(self.to)


class OtpState(BaseModel):
    """The code part of the agent state."""

    model_config = ConfigDict(extra="ignore")

    challenge: Challenge | None = None
    confirmed_until: datetime | None = None  # account actions need no new code until then


class CodeBook:
    """Issues and checks codes. `master` is the gateway's secret key."""

    def __init__(self, master: bytes, *, ttl_s: int = 600, attempts: int = 5) -> None:
        self._key = derive_key(master, "one-time-codes")
        self.ttl = timedelta(seconds=ttl_s)
        self.attempts = attempts

    def issue(
        self,
        purpose: Purpose,
        to: Identity,
        *,
        conversation_id: int,
        now: datetime,
        resume: str | None = None,
        account: str | None = None,
    ) -> tuple[str, Challenge]:
        """A new code (to send, then forget) and the challenge to remember."""
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        expires = now + self.ttl
        challenge = Challenge(
            purpose=purpose,
            to=to.key,
            digest=self._digest(conversation_id, to.key, expires, code),
            expires_at=expires,
            resume=resume,
            account=account,
        )
        return code, challenge

    def check(
        self, challenge: Challenge, code: str, *, conversation_id: int, now: datetime
    ) -> tuple[Check, Challenge]:
        """Try `code`; returns the outcome and the challenge as it is after the try."""
        if challenge.used:
            return Check.USED, challenge
        if challenge.attempts >= self.attempts:
            return Check.LOCKED, challenge
        if now >= challenge.expires_at:
            return Check.EXPIRED, challenge
        expected = self._digest(conversation_id, challenge.to, challenge.expires_at, code)
        if hmac.compare_digest(expected, challenge.digest):
            return Check.OK, challenge.model_copy(update={"used": True})
        tried = challenge.model_copy(update={"attempts": challenge.attempts + 1})
        return (Check.WRONG if tried.attempts < self.attempts else Check.LOCKED), tried

    def left(self, challenge: Challenge) -> int:
        return max(0, self.attempts - challenge.attempts)

    def _digest(self, conversation_id: int, to: str, expires: datetime, code: str) -> str:
        msg = f"{conversation_id}|{to}|{expires.isoformat()}|{code}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()


class TargetLimiter:
    """At most `per_hour` codes to one target in any hour and `per_day` in any day,
    across customers (in memory, bounded to MAX_TARGETS targets, least recent dropped)."""

    def __init__(self, per_hour: int, per_day: int | None = None) -> None:
        self.per_hour = per_hour
        self.per_day = per_day if per_day is not None else 24 * per_hour
        self._sent: collections.OrderedDict[str, list[datetime]] = collections.OrderedDict()

    def allow(self, target: Identity, now: datetime) -> bool:
        """Whether a code may go to `target` now; counts it when it may."""
        today = [t for t in self._sent.pop(target.key, []) if now - t < timedelta(days=1)]
        this_hour = sum(now - t < timedelta(hours=1) for t in today)
        allowed = this_hour < self.per_hour and len(today) < self.per_day
        if allowed:
            today.append(now)
        if today:
            self._sent[target.key] = today
        while len(self._sent) > MAX_TARGETS:
            self._sent.popitem(last=False)
        return allowed


def find_code(text: str) -> str | None:
    """The one-time code in a message: 6 digits ("123456", "123 456", "code: 123-456")
    or 6 spoken digits ("one two three four five six"); None when there is none or
    the digits are part of a longer number."""
    matches = [re.sub(r"\D", "", m.group(0)) for m in _DIGITS.finditer(text)]
    if len(matches) == 1:
        return matches[0]
    spoken = _SPOKEN.search(text)
    if spoken and not matches:
        return "".join(_WORDS[w] for w in re.split(r"[\s,.-]+", spoken.group(0).lower()))
    return None


__all__ = [
    "CODE_DIGITS",
    "Challenge",
    "Check",
    "CodeBook",
    "OtpState",
    "Purpose",
    "TargetLimiter",
    "find_code",
]
