"""What the phone channel keeps on the app (under `PHONE`)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from channels.phone.channel import PhoneChannel
from channels.phone.services import CallServices, Openings
from channels.phone.transfer.warm import WarmTransfers
from channels.phone.twilio.stream_token import StreamTokens
from channels.twilio.signature import TwilioSignatures
from gateway.settings import Settings


@dataclass
class PhoneState:
    """Built by `setup_phone`; `services` is filled in once the models are loaded
    (start-up), and stays None while the channel is off (`off_reason` says why)."""

    settings: Settings
    signatures: TwilioSignatures
    channel: PhoneChannel
    stream_tokens: StreamTokens  # bind each Media Stream to the call the webhook answered
    services: CallServices | None = None
    off_reason: str | None = "the phone channel is starting"
    transfers: WarmTransfers | None = None  # warm transfers, when transfer numbers are set
    openings: Openings | None = None  # outbound calls' openings, when outbound calls are on


PHONE = web.AppKey("phone", PhoneState)

__all__ = ["PHONE", "PhoneState"]
