"""The event the outreach API takes and the outreach it becomes."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from pydantic import Field, model_validator

from gateway.models import Frozen


class OutreachChannel(enum.StrEnum):
    """A channel an outreach can go out on (`call`: the phone, placed by us)."""

    SMS = "sms"
    EMAIL = "email"
    CALL = "call"
    WEBCHAT = "webchat"


class OutreachState(enum.StrEnum):
    """queued -> sending -> sent (-> delivered) | failed; deferred (quiet hours, back to
    queued when due); skipped (opted out, frequency cap, nothing to reach them on)."""

    QUEUED = "queued"
    DEFERRED = "deferred"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    SKIPPED = "skipped"

    @property
    def final(self) -> bool:
        return self in (self.SENT, self.DELIVERED, self.FAILED, self.SKIPPED)


class CallOutcome(enum.StrEnum):
    """What became of an outreach call (reported by the caller)."""

    HUMAN = "human"
    MACHINE = "machine"  # a voicemail was left
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"


class CustomerRef(Frozen):
    """Who the event is about: exactly one of a backend account, a phone, an email."""

    account: str | None = Field(default=None, min_length=1, max_length=200)
    phone: str | None = Field(default=None, pattern=r"^\+[1-9]\d{6,14}$")  # E.164
    email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

    @model_validator(mode="after")
    def _one(self) -> CustomerRef:
        given = [v for v in (self.account, self.phone, self.email) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of account, phone, email")
        return self


class OutreachEvent(Frozen):
    """`POST /api/v1/outreach/events`: one business event."""

    id: str = Field(min_length=1, max_length=200, description="The sender's unique event id.")
    type: str = Field(min_length=1, max_length=60, pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
    customer: CustomerRef
    data: dict[str, Any] = Field(default_factory=dict)
    channel: OutreachChannel | None = None  # forces one channel


class Outreach(Frozen):
    """One outreach as stored (what `GET /api/v1/outreach/{id}` answers)."""

    id: str
    event_id: str
    type: str
    state: OutreachState
    customer_id: int | None = None
    conversation_id: int | None = None
    channel: OutreachChannel | None = None
    tried: tuple[OutreachChannel, ...] = ()
    message_id: int | None = None
    call_sid: str | None = None
    outcome: CallOutcome | None = None
    error: str | None = None
    due_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None = None
    campaign_id: str | None = None  # a campaign's recipient (gateway/outreach/campaigns.py)
    campaign_row: int | None = None  # its row in the campaign's list (1: the first)
    event: OutreachEvent = Field(exclude=True)


class OutreachFigures(Frozen):
    """The outreach section of the reports, for a period (by creation time)."""

    created: int = 0
    sent: int = 0  # sent or delivered
    delivered: int = 0  # the provider confirmed delivery (or a person answered the call)
    replied: int = 0  # the customer wrote or spoke after it, in its conversation
    failed: int = 0
    opted_out: int = 0  # skipped: opted out or unsubscribed
    skipped: int = 0  # every skip, opt-outs included
    deferred: int = 0  # waiting for quiet hours to end
    by_channel: dict[str, int] = Field(default_factory=dict)  # sent, per channel


class OutreachReport(OutreachFigures):
    """The reports' outreach section (`outreach` of `GET /api/v1/reports/summary`):
    the figures of the outreach created in the period, and the calls it saved."""

    calls_saved: int = Field(
        0, description="Outreach sent at least saved_after_days ago that was followed by no "
        "inbound contact from that customer (any channel) within saved_after_days: an upper "
        "bound on the contacts it spared (some would not have come anyway)."
    )  # fmt: skip
    calls_saved_of: int = Field(
        0, description="Outreach sent at least saved_after_days ago (what calls_saved counts "
        "among; newer outreach is not judged yet)."
    )  # fmt: skip
    saved_after_days: float = Field(3.0, description="GATEWAY_OUTREACH_SAVED_DAYS.")
