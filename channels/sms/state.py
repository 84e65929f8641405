"""What the SMS channel keeps on the app (under `SMS`)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from channels.sms.channel import SmsChannel
from channels.twilio.signature import TwilioSignatures
from gateway.settings import Settings


@dataclass
class SmsState:
    """Built by `setup_sms`; the channel gets its store and REST client at start-up."""

    settings: Settings
    signatures: TwilioSignatures
    channel: SmsChannel


SMS = web.AppKey("sms", SmsState)

__all__ = ["SMS", "SmsState"]
