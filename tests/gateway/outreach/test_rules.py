"""The rules file a deployment configures, and the respect helpers (quiet hours,
unsubscribe links): pure functions, no app."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.errors import ConfigError
from gateway.outreach.models import OutreachChannel
from gateway.outreach.respect import Unsubscribes, parse_window, quiet_until, zones_of
from gateway.outreach.rules import Rules, template_values

CUSTOM = """
[types."parcel.ready"]
channels = ["email", "sms"]
reason = "parcel $parcel waits at $shop"
sms = "Hi $first_name, parcel $parcel waits for you at $shop."
email_subject = "Parcel $parcel is ready"
email_body = "It waits at $shop. Costs $$0."
webchat = "Parcel $parcel is ready."
call_opening = "Parcel $parcel is ready."
voicemail = "Parcel $parcel is ready."
"""


def test_the_packaged_rules_cover_the_three_shipped_types() -> None:
    rules = Rules()
    assert {"order.delayed", "payment.failed", "subscription.renewing"} <= set(rules.types)
    delayed = rules.types["order.delayed"]
    assert delayed.call and OutreachChannel.CALL in delayed.channels
    assert not rules.types["payment.failed"].call
    texts = delayed.render(template_values({"order_id": 1001, "new_eta": "Friday"}, "Jane Doe"))
    assert texts.sms.startswith("Hi Jane, your order 1001 is running late")
    assert len(texts.sms) <= 160  # one SMS segment


def test_a_deployment_replaces_the_rules_with_its_own_file(tmp_path: Path) -> None:
    (tmp_path / "rules.toml").write_text(CUSTOM, encoding="utf-8")
    rules = Rules(tmp_path)
    assert set(rules.types) == {"parcel.ready"}
    rule = rules.types["parcel.ready"]
    assert rule.fields() == {"parcel", "shop", "first_name"}
    body = rule.render(template_values({"parcel": "P9", "shop": "Main St"}, None))
    assert body.sms == "Hi there, parcel P9 waits for you at Main St."
    assert body.email_body == "It waits at Main St. Costs $0."
    # Templates substitute names only: nothing in the data is evaluated.
    evil = rule.render(template_values({"parcel": "${shop.__class__}", "shop": "x"}, None))
    assert evil.webchat == "Parcel ${shop.__class__} is ready."


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("not toml = [", "is not TOML"),
        ('[types."a.b"]\nchannels = ["fax"]', "type 'a.b'"),
        ("[defaults]\ncall = true", "has no [types"),
        (CUSTOM.replace('channels = ["email", "sms"]', 'channels = ["call"]'), "not allowed"),
    ],
)
def test_a_bad_rules_file_stops_the_start_naming_the_setting(
    tmp_path: Path, text: str, says: str
) -> None:
    (tmp_path / "rules.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="GATEWAY_OUTREACH_RULES_DIR") as err:
        Rules(tmp_path)
    assert says in str(err.value)
    with pytest.raises(ConfigError, match="no such directory"):
        Rules(tmp_path / "missing")


def test_quiet_hours_in_the_customers_zone() -> None:
    window = parse_window("21:00-08:00")
    new_york = zones_of("+12125551234", "UTC")
    assert new_york == [ZoneInfo("America/New_York")]
    # 03:00 UTC is 22:00 in New York (EST): quiet until 08:00 there, 13:00 UTC.
    opens = quiet_until(datetime(2026, 12, 7, 3, 0, tzinfo=UTC), new_york, window)
    assert opens is not None and opens.astimezone(UTC) == datetime(2026, 12, 7, 13, 0, tzinfo=UTC)
    # 15:00 UTC is 10:00 there: no wait.
    assert quiet_until(datetime(2026, 12, 7, 15, 0, tzinfo=UTC), new_york, window) is None
    # A number of no known region: the business's zone.
    assert zones_of("+15551234567", "Europe/Paris") == [ZoneInfo("Europe/Paris")]
    assert quiet_until(datetime(2026, 12, 7, 3, 0, tzinfo=UTC), new_york, None) is None


def test_a_number_in_several_zones_waits_until_it_is_day_in_all() -> None:
    zones = zones_of("+61412345678", "UTC")  # an Australian mobile: every zone Australia has
    assert len(zones) > 1
    window = parse_window("21:00-08:00")
    now = datetime(2026, 12, 7, 21, 30, tzinfo=UTC)  # 08:30 in Sydney, 05:30 in Perth
    assert quiet_until(now, [ZoneInfo("Australia/Sydney")], window) is None
    opens = quiet_until(now, zones, window)
    assert opens is not None and opens > now
    # When it opens it is day everywhere the number may be; a minute before, not.
    assert quiet_until(opens, zones, window) is None
    assert quiet_until(opens - timedelta(minutes=1), zones, window) is not None


def test_unsubscribe_links_are_signed() -> None:
    links = Unsubscribes(b"k" * 32, "https://support.example.com/")
    url = links.url("Jane@Example.com")
    token = url.rsplit("/", 1)[1]
    assert links.address(token) == "jane@example.com"
    assert links.address(token[:-2] + "xx") is None
    assert Unsubscribes(b"other" * 8, "https://x").address(token) is None
    headers = links.headers("jane@example.com")
    assert headers["List-Unsubscribe"] == f"<{links.url('jane@example.com')}>"
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
