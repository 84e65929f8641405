"""Phone numbers in one form everywhere: E.164, parsed by `phonenumbers`.

`+1 (555) 123-4567` on an SMS, `+15551234567` as a call's caller id and
`555-123-4567` typed by an agent are one identity only if they are written
the same way, so every channel normalizes through here.
"""

from __future__ import annotations

import phonenumbers

DEFAULT_REGION = "US"


def to_e164(raw: str, region: str = DEFAULT_REGION) -> str | None:
    """`raw` as E.164 (`+15551234567`), or None when it is not a possible number.

    Numbers without a country code are read in `region`. Possible, not valid:
    fictional ranges such as 555 numbers must still normalize (demo data, tests).
    """
    text = raw.strip()
    if not text or len(text) > 40:
        return None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
