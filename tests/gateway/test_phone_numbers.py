"""Phone numbers normalize to one E.164 form, whatever channel wrote them."""

from __future__ import annotations

import pytest

from gateway.phone_numbers import to_e164


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+1 (555) 123-4567", "+15551234567"),
        ("+15551234567", "+15551234567"),
        ("555-123-4567", "+15551234567"),  # national format, default region US
        ("(555) 123 4567", "+15551234567"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+49 30 901820", "+4930901820"),
        ("", None),
        ("hello", None),
        ("+1 555", None),  # too short to be a number
        ("1" * 50, None),
    ],
)
def test_to_e164(raw: str, expected: str | None) -> None:
    assert to_e164(raw) == expected


def test_region_reads_national_numbers() -> None:
    assert to_e164("020 7946 0958", "GB") == "+442079460958"
