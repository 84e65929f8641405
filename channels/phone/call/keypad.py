"""Keypad (DTMF) input on a call, turned into text the agent understands. Pure.

Rules, as an IVR caller expects them:

- digits collect until `#`, which submits them ("1001#" is order 1001);
- `*` clears what was typed so far;
- `0` pressed on its own means "a person": it is submitted as such when no
  other key follows within `zero_wait_ms` (so an order number may still start
  with 0), or at once when `#` follows it;
- digits left without `#` are submitted after `inter_digit_ms` of no key;
- `A`-`D` (only on test sets) are ignored, and at most `MAX_DIGITS` are kept.

Submitted text is worded so that the agent's ordinary language understanding
handles it and a person reading the conversation sees what happened:
`Keyed in 1001` and `Pressed 0: talk to a person`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MAX_DIGITS = 20
OPERATOR_TEXT = "Pressed 0: talk to a person"


@dataclass(frozen=True, slots=True)
class KeyInput:
    """What the caller keyed in, ready to hand to the agent."""

    kind: Literal["digits", "operator"]
    digits: str
    start_ms: int  # first key, call time
    end_ms: int  # the key (or timeout) that submitted it

    @property
    def text(self) -> str:
        return OPERATOR_TEXT if self.kind == "operator" else f"Keyed in {self.digits}"


class Keypad:
    """The keys of one call. Feed `press`; call `expire` once `deadline_ms` has passed."""

    def __init__(self, *, inter_digit_ms: int = 5000, zero_wait_ms: int = 1000) -> None:
        self.inter_digit_ms = inter_digit_ms
        self.zero_wait_ms = zero_wait_ms
        self._digits = ""
        self._first_ms = 0
        self._last_ms = 0

    @property
    def buffer(self) -> str:
        """Digits typed and not submitted yet."""
        return self._digits

    @property
    def deadline_ms(self) -> int | None:
        """When `expire` would submit what is typed (None when nothing is)."""
        if not self._digits:
            return None
        wait = self.zero_wait_ms if self._digits == "0" else self.inter_digit_ms
        return self._last_ms + wait

    def press(self, key: str, at_ms: int) -> KeyInput | None:
        """One key at call time `at_ms`; returns the input it completes, if any."""
        if key == "#":
            return self._submit(at_ms)
        if key == "*":
            self._digits = ""
            return None
        if not (len(key) == 1 and key.isdigit()):
            return None
        if not self._digits:
            self._first_ms = at_ms
        if len(self._digits) < MAX_DIGITS:
            self._digits += key
        self._last_ms = at_ms
        return None

    def expire(self, now_ms: int) -> KeyInput | None:
        """Submit what is typed if its deadline has passed."""
        deadline = self.deadline_ms
        if deadline is None or now_ms < deadline:
            return None
        return self._submit(now_ms)

    def _submit(self, at_ms: int) -> KeyInput | None:
        digits, self._digits = self._digits, ""
        if not digits:
            return None
        kind: Literal["digits", "operator"] = "operator" if digits == "0" else "digits"
        return KeyInput(kind=kind, digits=digits, start_ms=self._first_ms, end_ms=at_ms)


__all__ = ["MAX_DIGITS", "OPERATOR_TEXT", "KeyInput", "Keypad"]
