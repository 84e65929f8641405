"""Helpers for SMS tests: the real app wired to a local Twilio stand-in, and a texter
that posts Twilio's webhooks, signed with twilio's own RequestValidator."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.test_utils import TestClient

from channels.twilio.signature import SIGNATURE_HEADER, TwilioSignatures
from gateway.app import DISPATCHER, STORE
from gateway.models import Identity, IdentityKind, Message
from gateway.protocols import Store
from gateway.settings import Settings, load_settings
from tests.support.twilio_rest import ACCOUNT_SID, AUTH_TOKEN

PUBLIC_URL = "https://support.example.com"
OUR_NUMBER = "+15557654321"
JANE = "+15551234567"  # Jane Doe in the demo data
T = TypeVar("T")


def sms_settings(data_dir: Path, api_url: str, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "public_url": PUBLIC_URL,
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": AUTH_TOKEN,
        "twilio_api_url": api_url,
    }
    values.update(extra)
    return load_settings(**values)


def phone(number: str) -> Identity:
    return Identity(kind=IdentityKind.PHONE, value=number)


class Texter:
    """Plays Twilio's side of the messaging webhooks against the app under test."""

    _sids = (f"SM{n:032x}" for n in itertools.count(0xA000))

    def __init__(self, client: TestClient[Any, Any], number: str = JANE) -> None:
        self.client = client
        self.number = number
        self.signatures = TwilioSignatures(AUTH_TOKEN, PUBLIC_URL, "wss://support.example.com")

    @property
    def app(self) -> web.Application:
        return self.client.app  # type: ignore[no-any-return]

    @property
    def store(self) -> Store:
        return self.app[STORE]

    async def drain(self) -> None:
        await self.app[DISPATCHER].drain()

    def inbound_form(
        self, body: str, *, sid: str | None = None, media: tuple[tuple[str, str], ...] = ()
    ) -> dict[str, str]:
        sid = sid or next(self._sids)
        form = {
            "ToCountry": "US", "ToState": "CA", "SmsMessageSid": sid, "NumMedia": str(len(media)),
            "ToCity": "", "FromZip": "", "SmsSid": sid, "FromState": "CA", "SmsStatus": "received",
            "FromCity": "", "Body": body, "FromCountry": "US", "To": OUR_NUMBER,
            "MessagingServiceSid": "", "ToZip": "", "NumSegments": "1", "MessageSid": sid,
            "AccountSid": ACCOUNT_SID, "From": self.number, "ApiVersion": "2010-04-01",
        }  # fmt: skip
        for i, (url, content_type) in enumerate(media):
            form[f"MediaUrl{i}"] = url
            form[f"MediaContentType{i}"] = content_type
        return form

    async def post(
        self, path: str, form: dict[str, str], *, signature: str | bool | None = True
    ) -> tuple[int, str]:
        headers = {}
        if signature is True:
            headers[SIGNATURE_HEADER] = self.signatures.sign(PUBLIC_URL + path, form)
        elif isinstance(signature, str):
            headers[SIGNATURE_HEADER] = signature
        resp = await self.client.post(path, data=form, headers=headers)
        return resp.status, await resp.text()

    async def text(self, body: str, **kwargs: Any) -> tuple[int, str]:
        signature = kwargs.pop("signature", True)
        return await self.post("/twilio/sms", self.inbound_form(body, **kwargs),
                               signature=signature)  # fmt: skip

    async def status(
        self, sid: str, status: str, error_code: str | None = None, **extra: str
    ) -> tuple[int, str]:
        form = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status,
                "AccountSid": ACCOUNT_SID, "From": OUR_NUMBER, "To": self.number,
                "ApiVersion": "2010-04-01", **extra}  # fmt: skip
        if error_code is not None:
            form["ErrorCode"] = error_code
        return await self.post("/twilio/sms/status", form)

    async def messages(self) -> list[Message]:
        """Every stored message of this texter's customer, oldest first."""
        customer = await self.store.find_customer(phone(self.number))
        return [] if customer is None else await self.store.history(customer.id)

    async def opted_out(self) -> bool:
        return await self.store.is_opted_out(phone(self.number))


async def eventually(check: Callable[[], Awaitable[T]], within_s: float = 10.0) -> T:
    """Poll `check` until it returns something truthy."""
    async with asyncio.timeout(within_s):
        while True:
            got = await check()
            if got:
                return got
            await asyncio.sleep(0.02)
