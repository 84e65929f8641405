"""Helpers for the warm transfer tests: the app with transfer numbers, a queued phone
conversation, Twilio's signed callbacks, and reading the TwiML Twilio was given."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from numpy.typing import NDArray

from channels.phone.state import PHONE
from channels.phone.transfer.warm import WarmTransfers
from channels.twilio.signature import SIGNATURE_HEADER
from gateway.app import STORE
from gateway.models import (
    ChannelKind,
    Conversation,
    ConversationState,
    Event,
    HandoffBrief,
    Identity,
    IdentityKind,
    Sentiment,
    Verification,
)
from gateway.protocols import EventDraft, Store, Transcriber, Transcript, TurnRecord
from tests.channels.phone.calls import (
    ACCOUNT_SID,
    PUBLIC_URL,
    FakeTwilioRest,
    phone_app,
    phone_settings,
    signatures,
)

REPS = ("+15550001111", "+15550002222")
CALLER_ID = "+15550009999"
JANE = "+15551234567"
CALLER_SID = "CA" + "7" * 32
BRIEF = HandoffBrief(
    need="Wants a refund (order 1001)",
    tried=("automated agent",),
    missing=("the reason for the refund",),
    next_step="Review refund eligibility under the 30-day returns policy.",
    confidence=0.9,
    sentiment=Sentiment.ANGRY,
    queue="billing",
    reason="refunds always go to a person",
)


class DeafTranscriber:
    """`Transcriber` for tests that never stream audio: hears nothing."""

    async def transcribe(self, pcm16k: NDArray[np.float32], *, owner: object = None) -> Transcript:
        return Transcript(text="", confidence=0.0, duration_ms=int(pcm16k.size) // 16)

    async def close(self) -> None:
        return None


@dataclass
class Env:
    app: web.Application
    client: TestClient[Any, Any]
    rest: FakeTwilioRest
    store: Store
    transfers: WarmTransfers


def transfer_app(
    data_dir: Path,
    api_url: str,
    transcriber: Transcriber | None = None,
    numbers: Sequence[str] = REPS,
    **extra: Any,
) -> web.Application:
    """The phone app with warm transfers on: reps' phones, then the lines `numbers`."""
    settings = phone_settings(
        data_dir, api_url, transfer_numbers=",".join(numbers), transfer_caller_id=CALLER_ID,
        **extra,
    )  # fmt: skip
    return phone_app(settings, transcriber or DeafTranscriber())


def transfers_of(app: web.Application) -> WarmTransfers:
    transfers = app[PHONE].transfers
    assert transfers is not None, "transfer numbers are set: warm transfers are on"
    return transfers


async def queued_phone_conversation(
    store: Store, number: str = JANE, name: str = "Jane Doe"
) -> Conversation:
    """A caller's conversation (Jane's), handed over by the agent on a call (queued in
    the billing queue, with a brief)."""
    identity = Identity(kind=IdentityKind.PHONE, value=number, verified=Verification.CALLER_ID)
    opened = await store.open_session(identity, ChannelKind.PHONE, display_name=name)
    stored = await store.record_turn(
        TurnRecord(
            conversation_id=opened.conversation.id,
            expected_version=opened.conversation.version,
            events=(EventDraft(kind="handover", data=BRIEF.model_dump(mode="json")),),
            state=ConversationState.QUEUED,
            queue="billing",
            brief=BRIEF,
        )
    )
    return stored.conversation


async def twilio_post(
    client: TestClient[Any, Any], url: str, params: dict[str, str]
) -> ClientResponse:
    """POST `params` to the public `url` signed as Twilio signs it."""
    assert url.startswith(PUBLIC_URL), url
    headers = {SIGNATURE_HEADER: signatures().sign(url, params)}
    return await client.post(url.removeprefix(PUBLIC_URL), data=params, headers=headers)


def call_status(call_sid: str, status: str, sequence: int, to: str = REPS[0]) -> dict[str, str]:
    """A call status callback as Twilio posts it for an outbound call."""
    return {
        "AccountSid": ACCOUNT_SID, "CallSid": call_sid, "CallStatus": status, "From": CALLER_ID,
        "To": to, "Direction": "outbound-api", "ApiVersion": "2010-04-01",
        "CallbackSource": "call-progress-events", "SequenceNumber": str(sequence),
    }  # fmt: skip


def gather_result(call_sid: str, digits: str) -> dict[str, str]:
    return {"AccountSid": ACCOUNT_SID, "CallSid": call_sid, "CallStatus": "in-progress",
            "Digits": digits, "FinishedOnKey": ""}  # fmt: skip


def conference_event(event: str, call_sid: str, name: str) -> dict[str, str]:
    return {"AccountSid": ACCOUNT_SID, "ConferenceSid": "CF" + "3" * 32, "FriendlyName": name,
            "StatusCallbackEvent": event, "CallSid": call_sid, "SequenceNumber": "1"}  # fmt: skip


def xml(twiml: str) -> ET.Element:
    return ET.fromstring(twiml)


def conference_of(twiml: str) -> ET.Element:
    """The `<Dial><Conference>` of a TwiML document (AssertionError if none)."""
    found = xml(twiml).find("./Dial/Conference")
    assert found is not None, twiml
    return found


def gather_of(twiml: str) -> tuple[str, str]:
    """(action URL, played URL) of a one-digit `<Gather>` around a `<Play>`."""
    gather = xml(twiml).find("./Gather")
    assert gather is not None, twiml
    assert gather.get("numDigits") == "1" and gather.get("actionOnEmptyResult") == "true"
    play = gather.find("./Play")
    assert play is not None and play.text, twiml
    return gather.get("action", ""), play.text


async def transfer_events(store: Store, conversation_id: int) -> list[Event]:
    return [e for e in await store.events(conversation_id) if e.kind.startswith("transfer.")]


async def kinds(store: Store, conversation_id: int) -> list[str]:
    return [e.kind for e in await transfer_events(store, conversation_id)]


__all__ = [
    "BRIEF", "CALLER_ID", "CALLER_SID", "JANE", "REPS", "STORE", "DeafTranscriber", "Env",
    "call_status", "conference_event", "conference_of", "gather_of", "gather_result", "kinds",
    "queued_phone_conversation", "transfer_app", "transfer_events", "transfers_of",
    "twilio_post", "xml",
]  # fmt: skip
