"""Campaigns: a one-off notice to a list of customers, paced and under people's control.

A campaign is created from a CSV (one recipient a row) and a message: an event type
of the rules (the row's columns are its data) or texts given with the campaign (per
channel; `$name`s are the row's columns). Every row becomes one outreach row with
the campaign's id, an outreach id and event id derived from (campaign, row), all in
one transaction: the core's sender (service.py) then sends each like a business
event, with opt-outs, quiet hours, the frequency cap and its once-only rules. A
campaign's state (running, paused, cancelled; done once nobody is left) is in the
database: every node's sender claims its recipients only while it runs.
"""

from __future__ import annotations

import csv
import enum
import hashlib
import io
from datetime import datetime
from typing import Any

from pydantic import Field, ValidationError, model_validator

from gateway.models import Frozen
from gateway.outreach.models import CustomerRef, OutreachChannel, OutreachEvent
from gateway.outreach.rules import Rule, Rules
from gateway.phone_numbers import to_e164

MAX_CSV_BYTES = 1024 * 1024  # the app's client_max_size bounds every body to this too
MAX_ROWS = 20_000
MAX_PROBLEMS = 20  # a bad file's first problems, not ten thousand of them
TEXT_TYPE = "campaign"  # the type of a campaign's outreach whose texts it gives itself
WHO = ("account", "phone", "email")
TEXT_CHANNELS = {"sms": OutreachChannel.SMS, "email_body": OutreachChannel.EMAIL,
                 "webchat": OutreachChannel.WEBCHAT}  # fmt: skip


class CampaignState(enum.StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DONE = "done"


class CampaignMessage(Frozen):
    """What a campaign says: an event `type` of the rules, or its own texts."""

    type: str | None = Field(default=None, max_length=60)
    reason: str | None = Field(default=None, max_length=500)
    sms: str | None = Field(default=None, min_length=1, max_length=1600)
    email_subject: str | None = Field(default=None, min_length=1, max_length=200)
    email_body: str | None = Field(default=None, min_length=1, max_length=20_000)
    webchat: str | None = Field(default=None, min_length=1, max_length=4000)
    channel: OutreachChannel | None = None  # only this channel

    @model_validator(mode="after")
    def _one(self) -> CampaignMessage:
        texts = [self.sms, self.email_body, self.webchat]
        if self.type is None and not any(texts):
            raise ValueError("give an event type, or at least one of sms, email_body, webchat")
        if self.type is not None and (any(texts) or self.email_subject):
            raise ValueError("give an event type or texts, not both")
        if self.email_body and not self.email_subject:
            raise ValueError("email_subject: an email needs a subject")
        return self


class CampaignSpec(Frozen):
    """A new campaign, as posted (the CSV travels beside it)."""

    name: str = Field(min_length=1, max_length=200)
    message: CampaignMessage
    rate: float | None = Field(default=None, ge=0.05, le=1000,
                               description="Messages per second for this campaign.")  # fmt: skip


class Campaign(Frozen):
    id: str
    name: str
    state: CampaignState
    message: CampaignMessage
    rate: float | None = None
    total: int
    created_by: str | None = None
    created_at: datetime
    updated_at: datetime


class CampaignInvalid(ValueError):
    """A campaign that cannot be created; `problems` name the rows."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(problems[0])
        self.problems = problems


def rule_of(message: CampaignMessage, rules: Rules) -> Rule:
    """The rule a campaign's recipients are sent by (CampaignInvalid if none)."""
    if message.type is not None:
        rule = rules.get(message.type)
        if rule is None:
            known = ", ".join(sorted(rules.types))
            raise CampaignInvalid([f"type: unknown event type {message.type!r} (known: {known})"])
        return rule
    given = {k: getattr(message, k) for k in TEXT_CHANNELS if getattr(message, k)}
    channels = [TEXT_CHANNELS[k] for k in given]
    if message.channel is not None:
        if message.channel not in channels:
            raise CampaignInvalid([f"channel: no text for {message.channel.value}"])
        channels = [message.channel]
    filler = next(iter(given.values()))  # texts of channels it does not use: never sent
    return Rule(
        channels=tuple(channels), call=False,
        reason=message.reason or filler[:200],
        sms=message.sms or filler, email_subject=message.email_subject or filler[:200],
        email_body=message.email_body or filler, webchat=message.webchat or filler,
        call_opening=filler, voicemail=filler,
    )  # fmt: skip


def outreach_id(campaign_id: str, row: int) -> str:
    """The outreach id of a campaign's row: the same after any restart."""
    digest = hashlib.sha256(f"{campaign_id}:{row}".encode()).hexdigest()
    return "or_" + digest[:24]


def event_id(campaign_id: str, row: int) -> str:
    return f"campaign:{campaign_id}:{row}"


def parse_csv(raw: bytes, rule: Rule, campaign_id: str, message: CampaignMessage) -> (
    list[OutreachEvent]
):  # fmt: skip
    """The recipients of a CSV as outreach events (row n: event `campaign:<id>:<n>`);
    CampaignInvalid naming the rows (row 1 is the first after the header)."""
    if len(raw) > MAX_CSV_BYTES:
        raise CampaignInvalid([f"csv: at most {MAX_CSV_BYTES} bytes"])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CampaignInvalid(["csv: not UTF-8 text"]) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [(h or "").strip().lower() for h in (reader.fieldnames or [])]
    if not header:
        raise CampaignInvalid(["csv: empty (a header line naming the columns comes first)"])
    if not set(WHO) & set(header):
        raise CampaignInvalid(["csv: the header needs an account, phone or email column"])
    reader.fieldnames = header
    needed = sorted(rule.fields() - {"name", "first_name"} - set(header))
    if needed:
        raise CampaignInvalid([f"csv: the message needs the column(s) {', '.join(needed)}"])
    uses = rule.fields()
    events: list[OutreachEvent] = []
    problems: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    try:
        for n, record in enumerate(reader, start=1):
            if n > MAX_ROWS:
                raise CampaignInvalid([f"csv: at most {MAX_ROWS} rows"])
            problem = _row(n, record, uses, campaign_id, message, seen, events)
            if problem is not None:
                problems.append(f"row {n} (line {reader.line_num}): {problem}")
                if len(problems) >= MAX_PROBLEMS:
                    break
    except csv.Error as exc:
        raise CampaignInvalid([f"csv: line {reader.line_num}: {exc}"]) from None
    if problems:
        raise CampaignInvalid(problems)
    if not events:
        raise CampaignInvalid(["csv: no rows after the header"])
    return events


def _row(n: int, record: dict[str | None, Any], uses: set[str], campaign_id: str,
         message: CampaignMessage, seen: dict[tuple[str, str], int],
         events: list[OutreachEvent]) -> str | None:  # fmt: skip
    if None in record:
        return "more values than the header has columns"
    values = {k: (v or "").strip() for k, v in record.items() if k}
    who = {k: values[k] for k in WHO if values.get(k)}
    if len(who) != 1:
        return "give exactly one of account, phone, email"
    if "phone" in who:
        who["phone"] = to_e164(who["phone"]) or who["phone"]
    key = next(iter(who.items()))
    if key in seen:
        return f"the same {key[0]} as row {seen[key]}"
    try:
        ref = CustomerRef.model_validate(who)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"]) or key[0]
        return f"{where}: {err['msg']} ({who[key[0]][:60]!r})"
    data: dict[str, Any] = {k: v for k, v in values.items() if k not in WHO and v}
    if data.get("name") and "first_name" not in data:
        data["first_name"] = data["name"].split(" ")[0]
    missing = sorted(u for u in uses - {"name", "first_name"} if not data.get(u))
    if missing:
        return f"{', '.join(missing)}: empty, and the message uses it"
    seen[key] = n
    events.append(OutreachEvent(id=event_id(campaign_id, n), type=message.type or TEXT_TYPE,
                                customer=ref, data=data, channel=message.channel))  # fmt: skip
    return None


__all__ = [
    "MAX_CSV_BYTES",
    "MAX_ROWS",
    "TEXT_TYPE",
    "Campaign",
    "CampaignInvalid",
    "CampaignMessage",
    "CampaignSpec",
    "CampaignState",
    "event_id",
    "outreach_id",
    "parse_csv",
    "rule_of",
]  # fmt: skip
