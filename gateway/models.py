"""The one session model shared by every channel, the store and the agent.

Everything here is a frozen pydantic model: records read from the store
(`Customer`, `Identity`, `Conversation`, `Message`, `Event`), the normalized
inbound events that channel adapters produce, and the outbound actions that
the agent core returns. No vendor payload (a Twilio dict, an email object)
ever travels past its adapter; adapters translate into these.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Frozen(BaseModel):
    """Base for every shared model: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ChannelKind(enum.StrEnum):
    """Transports a conversation can run over."""

    WEBCHAT = "webchat"
    PHONE = "phone"
    SMS = "sms"
    EMAIL = "email"
    CONSOLE = "console"
    SYSTEM = "system"


class IdentityKind(enum.StrEnum):
    """What an identity's value names."""

    PHONE = "phone"
    EMAIL = "email"
    WEBCHAT = "webchat"
    ACCOUNT = "account"


class Verification(enum.StrEnum):
    """How the gateway knows an identity belongs to the person using it."""

    NONE = "none"
    SIGNED_TOKEN = "signed_token"  # our own signed visitor token (a browser we issued it to)
    HMAC = "hmac"  # the embedding site signed its user id with the shared secret
    CALLER_ID = "caller_id"  # phone network caller id (spoofable, weak)
    SENDER = "sender"  # SMS/email sender address (spoofable, weak)
    OTP = "otp"  # one-time code round trip over that channel
    BACKEND = "backend"  # linked because the business backend lists it on the account


class ConversationState(enum.StrEnum):
    BOT = "bot"
    QUEUED = "queued"
    WITH_REP = "with_rep"
    CLOSED = "closed"


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    INTERNAL = "internal"  # rep notes and system notes the customer never sees


class AuthorKind(enum.StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"
    REP = "rep"
    SYSTEM = "system"


class DeliveryStatus(enum.StrEnum):
    """Where an outbound message is on its way to the customer (provider callbacks)."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    READ = "read"

    @property
    def final(self) -> bool:
        return self in _FINAL_DELIVERY

    @property
    def rank(self) -> int:
        """Later states outrank earlier ones; callbacks may arrive out of order."""
        return _DELIVERY_RANK[self]


_DELIVERY_RANK = {
    DeliveryStatus.QUEUED: 0,
    DeliveryStatus.SENDING: 1,
    DeliveryStatus.SENT: 2,
    DeliveryStatus.DELIVERED: 3,
    DeliveryStatus.UNDELIVERED: 3,
    DeliveryStatus.FAILED: 3,
    DeliveryStatus.READ: 4,
}
_FINAL_DELIVERY = frozenset(
    {
        DeliveryStatus.DELIVERED,
        DeliveryStatus.UNDELIVERED,
        DeliveryStatus.FAILED,
        DeliveryStatus.READ,
    }
)


class Sentiment(enum.StrEnum):
    POSITIVE = "positive"
    NEUTRAL = "neutral"
    NEGATIVE = "negative"
    ANGRY = "angry"


# --------------------------------------------------------------------- records


class Identity(Frozen):
    """One way of reaching a customer, written `kind:value` (`phone:+15551234567`)."""

    kind: IdentityKind
    value: str = Field(min_length=1, max_length=320)
    verified: Verification = Verification.NONE

    @property
    def key(self) -> str:
        return f"{self.kind.value}:{self.value}"

    @classmethod
    def parse(cls, key: str, verified: Verification = Verification.NONE) -> Identity:
        """Parse `kind:value`; raises ValueError on an unknown kind or empty value."""
        kind, sep, value = key.partition(":")
        if not sep or not value:
            raise ValueError(f"identity must look like kind:value, got {key!r}")
        return cls(kind=IdentityKind(kind), value=value, verified=verified)


class Customer(Frozen):
    id: int
    display_name: str | None = None
    account_ref: str | None = None  # the business backend's account id, when known
    identities: tuple[Identity, ...] = ()
    created_at: datetime


class Conversation(Frozen):
    id: int
    customer_id: int
    state: ConversationState
    channel: ChannelKind  # the channel the customer is on now
    channels: tuple[ChannelKind, ...] = ()  # every channel used over its life
    queue: str | None = None
    brief: HandoffBrief | None = None
    agent_state: dict[str, Any] = Field(default_factory=dict)
    version: int = 0
    created_at: datetime
    updated_at: datetime


class Attachment(Frozen):
    """A file that came with a message: a provider URL (MMS) or a stored file (email)."""

    url: str | None = Field(default=None, max_length=2000)
    path: str | None = Field(default=None, max_length=1000)  # relative to DATA_DIR
    content_type: str = Field(default="application/octet-stream", max_length=200)
    filename: str | None = Field(default=None, max_length=300)
    size: int | None = Field(default=None, ge=0)
    # Why the file was not kept (e.g. "too_large"); it then has neither path nor url.
    refused: str | None = Field(default=None, max_length=100)


class VoiceTiming(Frozen):
    """Timing of a spoken utterance, relative to the start of the call."""

    start_ms: int = Field(ge=0)
    end_ms: int = Field(ge=0)


class Message(Frozen):
    id: int
    conversation_id: int
    customer_id: int
    seq: int  # per-customer, gap-free, strictly increasing: what clients resume from
    direction: Direction
    author: AuthorKind
    channel: ChannelKind
    text: str
    external_id: str | None = None
    confidence: float | None = None
    timing: VoiceTiming | None = None
    status: DeliveryStatus | None = None  # outbound: provider delivery state
    error_code: str | None = None  # outbound: the provider's error, when it failed
    attachments: tuple[Attachment, ...] = ()
    author_name: str | None = None  # who wrote it, as the customer sees them (a rep's first name)
    created_at: datetime


class Event(Frozen):
    """One entry of a conversation's append-only audit log."""

    id: int
    conversation_id: int
    kind: str  # e.g. "tool.order_lookup", "state.changed", "handover", "transfer"
    data: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime


class HandoffBrief(Frozen):
    """What a rep needs to take over without asking the customer to repeat anything."""

    need: str
    tried: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    next_step: str
    confidence: float = Field(ge=0.0, le=1.0)
    sentiment: Sentiment = Sentiment.NEUTRAL
    queue: str = "general"
    reason: str = ""


Conversation.model_rebuild()

# ------------------------------------------------------------ inbound events

MAX_TEXT_CHARS = 8000


class InboundMessage(Frozen):
    """A customer said or wrote something, on any channel."""

    type: Literal["message"] = "message"
    channel: ChannelKind
    identity: Identity
    text: str = Field(max_length=MAX_TEXT_CHARS)
    external_id: str | None = Field(default=None, max_length=200)
    display_name: str | None = Field(default=None, max_length=200)
    account_ref: str | None = Field(default=None, max_length=200)
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    timing: VoiceTiming | None = None
    attachments: tuple[Attachment, ...] = Field(default=(), max_length=50)
    # Threaded channels (email): continue this conversation of the same customer (when it
    # is still open), or start a new one instead of continuing the open one.
    conversation_id: int | None = None
    new_conversation: bool = False

    @field_validator("text")
    @classmethod
    def _strip_nul(cls, value: str) -> str:
        # NUL and other C0 controls (but tab/newline) are never meaningful text.
        return "".join(ch for ch in value if ch >= " " or ch in "\n\t").strip()


InboundEvent = Annotated[InboundMessage, Field(discriminator="type")]

# ----------------------------------------------------------- outbound actions


class Reply(Frozen):
    """Say or write `text` to the customer on their current channel."""

    type: Literal["reply"] = "reply"
    text: str


class Transfer(Frozen):
    """Hand the conversation to a human queue with a brief."""

    type: Literal["transfer"] = "transfer"
    queue: str
    brief: HandoffBrief


class Hangup(Frozen):
    """End a call (voice) or close the session, after anything said before it."""

    type: Literal["hangup"] = "hangup"
    reason: str = ""


class Typing(Frozen):
    """Show (or stop showing) that the agent is composing an answer."""

    type: Literal["typing"] = "typing"
    active: bool


class Notify(Frozen):
    """Send `text` to `to` outside the conversation, over the channel that reaches that
    identity (SMS to a phone number, mail to an address): a one-time code.

    It holds a secret, so it is never stored as a message; the dispatcher records a
    `notify.sent` or `notify.failed` event. When it cannot be sent, the customer is
    told `failed_text` instead of the turn's replies."""

    type: Literal["notify"] = "notify"
    to: Identity
    text: str = Field(min_length=1, max_length=1000)
    subject: str = Field(default="Your verification code", max_length=200)
    failed_text: str = Field(min_length=1)


Action = Annotated[Reply | Transfer | Hangup | Typing | Notify, Field(discriminator="type")]
