"""`mask_pii`: hide personal data before customer text is quoted where people read it.

The brief a rep reads (and the audit events) quote the customer. Card numbers,
passwords, one-time codes and social security numbers have no business there:
the rep never needs them and a leak of the queue would expose them. Masking
errs on the side of hiding: a long digit run is masked as a card number
whether or not it passes the Luhn check, because customers mistype cards too.
"""

from __future__ import annotations

import re

# 13-19 digits, optionally grouped by spaces or dashes (card numbers).
_CARD = re.compile(r"(?<![\w+])(?:\d[ -]?){12,18}\d(?!\w)")
# A password stated outright: "password is X", "pwd: X", "my password was X".
_PASSWORD = re.compile(
    r"(?i)\b(password|passwd|pwd|passphrase|pass word)(\s*(?:is|was|=|:|-)\s*|\s+is\s+now\s+)"
    r"(\"[^\"]*\"|'[^']*'|\S+)"
)
# A code near a word that says it is one: "the code is 123 456", "OTP: 123456", "CVV 123".
_CODE = re.compile(
    r"(?i)\b(code|otp|one[- ]time (?:pass)?code|passcode|pin|cvv|cvc|security code)"
    r"(\W{1,5}(?:is\W{1,3}|was\W{1,3})?)(\d[\d -]{1,8}\d)\b"
)
_SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return f"[card number ending {digits[-4:]}]"


def mask_pii(text: str, *, card_last4: bool = True) -> str:
    """`text` with card numbers, stated passwords, one-time codes and SSNs masked.
    `card_last4`: keep a card's last four digits (for a rep); without them the
    result has no digits left from any of these (for parsing order numbers)."""
    text = _PASSWORD.sub(lambda m: f"{m.group(1)}{m.group(2)}[redacted]", text)
    text = _CODE.sub(lambda m: f"{m.group(1)}{m.group(2)}[code]", text)
    text = _SSN.sub("[ssn]", text)
    return _CARD.sub(_card if card_last4 else (lambda m: "[card number]"), text)


__all__ = ["mask_pii"]
