"""Routing policy: priority, wait estimates, business hours, settings, passwords."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from gateway.errors import ConfigError
from gateway.models import HandoffBrief, Sentiment
from gateway.routing import policy
from gateway.routing.passwords import hash_password, verify_password
from gateway.settings import load_settings


def _brief(sentiment: Sentiment) -> HandoffBrief:
    return HandoffBrief(need="x", next_step="y", confidence=0.5, sentiment=sentiment)


def test_angry_and_gold_customers_come_first_and_waiting_ages_everyone() -> None:
    calm = policy.base_priority(_brief(Sentiment.POSITIVE), None)
    angry = policy.base_priority(_brief(Sentiment.ANGRY), None)
    gold = policy.base_priority(_brief(Sentiment.POSITIVE), "gold")
    assert angry > calm and gold > calm
    # A calm customer who has waited long enough overtakes a newly arrived angry one.
    assert policy.effective_priority(calm, 600) > policy.effective_priority(angry, 0)


def test_wait_estimate_is_honest_about_missing_data() -> None:
    assert policy.estimate_wait_s([], ahead=3, staffed=2) is None
    assert policy.estimate_wait_s([120.0], ahead=3, staffed=0) is None
    assert policy.estimate_wait_s([60.0, 120.0, 600.0], ahead=3, staffed=2) == 240.0
    assert policy.describe_wait(240.0) == "about 4 minutes"
    assert policy.describe_wait(20.0) == "about 1 minute"
    assert policy.describe_wait(None) is None


def test_business_hours() -> None:
    hours = policy.parse_hours({"mon": "09:00-17:00"})
    paris = ZoneInfo("Europe/Paris")
    monday_10_paris = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # 10:00 in Paris
    assert policy.is_open(hours, paris, monday_10_paris)
    assert not policy.is_open(hours, paris, datetime(2026, 11, 23, 16, 30, tzinfo=UTC))
    assert not policy.is_open(hours, paris, datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
    assert policy.is_open({}, paris, monday_10_paris)


@pytest.mark.parametrize(
    ("setting", "value", "named"),
    [
        ("business_hours", {"funday": "09:00-17:00"}, "GATEWAY_BUSINESS_HOURS"),
        ("business_hours", {"mon": "17:00-09:00"}, "GATEWAY_BUSINESS_HOURS"),
        ("business_timezone", "Mars/Olympus", "GATEWAY_BUSINESS_TIMEZONE"),
        ("queues", {}, "GATEWAY_QUEUES"),
        ("offer_timeout_s", 0, "GATEWAY_OFFER_TIMEOUT_S"),
    ],
)
def test_bad_routing_settings_are_named(setting: str, value: object, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(**{setting: value})


def test_passwords_are_salted_scrypt_hashes() -> None:
    first, second = hash_password("s3cret pass"), hash_password("s3cret pass")
    assert first != second and first.startswith("scrypt$")
    assert verify_password("s3cret pass", first)
    assert not verify_password("s3cret pas", first)
    assert not verify_password("s3cret pass", "garbage")
