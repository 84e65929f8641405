"""What every phone call shares and what is known about one call."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from channels.phone.rest import TwilioCalls
from channels.phone.vad import EndpointerConfig, SileroVad
from channels.phone.voice import PhonePrompts
from gateway.dispatch import Dispatcher
from gateway.models import Conversation, Customer, Identity
from gateway.protocols import Store, Synthesizer, Transcriber

if TYPE_CHECKING:
    from channels.phone.call import PhoneCall


class AccountLookup(Protocol):
    """What the phone channel needs from the business backend (agent/backend.py)."""

    async def find_account(self, kind: Any, value: str) -> Any: ...


class CallRegistry(Protocol):
    """Where live calls are found by the outbound channel (PhoneChannel)."""

    def add(self, call: PhoneCall) -> None: ...

    def remove(self, call: PhoneCall) -> None: ...


@dataclass(frozen=True)
class CallServices:
    """What every call shares, built once by `setup_phone`."""

    store: Store
    dispatcher: Dispatcher
    transcriber: Transcriber
    synthesizer: Synthesizer
    prompts: PhonePrompts
    vad: SileroVad
    endpointer: EndpointerConfig
    barge_in_ms: int
    registry: CallRegistry
    calls_api: TwilioCalls | None = None
    accounts: AccountLookup | None = None


@dataclass
class CallInfo:
    """Who is on a call and which stored messages belong to it."""

    call_sid: str
    stream_sid: str
    caller: str  # as Twilio gave it ("+15551234567", "anonymous", ...)
    identity: Identity
    customer: Customer | None = None
    conversation: Conversation | None = None
    message_ids: list[int] = field(default_factory=list)
    ended: str | None = None  # why it ended, once it has


__all__ = ["AccountLookup", "CallInfo", "CallRegistry", "CallServices"]
