"""The real app for the outreach tests, wired to the local Twilio REST stand-in and a
local SMTP relay, on SQLite and PostgreSQL (`store_url`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.app import STORE, create_app
from gateway.keys import OUTREACH
from gateway.outreach.models import Outreach, OutreachState
from gateway.outreach.service import OutreachService
from gateway.protocols import Store
from gateway.settings import load_settings
from tests.support.mail import SUPPORT, CatchingRelay
from tests.support.twilio_rest import ACCOUNT_SID, AUTH_TOKEN, FakeTwilioRest

TOKEN = "outreach-test-token-0123456789"
PUBLIC_URL = "https://support.example.com"
OUR_NUMBER = "+15557654321"
JANE_PHONE, JANE_MAIL = "+15551234567", "jane@example.com"  # C-1001 in the demo data
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Gateway:
    client: TestClient[Any, Any]
    twilio: FakeTwilioRest
    relay: CatchingRelay

    @property
    def store(self) -> Store:
        return self.client.app[STORE]  # type: ignore[no-any-return]

    @property
    def service(self) -> OutreachService:
        return self.client.app[OUTREACH]  # type: ignore[no-any-return]

    async def post(self, event: dict[str, Any], headers: dict[str, str] | None = None) -> (
        tuple[int, dict[str, Any]]
    ):  # fmt: skip
        resp = await self.client.post("/api/v1/outreach/events", json=event,
                                      headers=AUTH if headers is None else headers)  # fmt: skip
        return resp.status, await resp.json()

    async def get(self, outreach_id: str) -> dict[str, Any]:
        resp = await self.client.get(f"/api/v1/outreach/{outreach_id}", headers=AUTH)
        assert resp.status == 200, await resp.text()
        body: dict[str, Any] = await resp.json()
        return body

    async def settled(self, outreach_id: str, within_s: float = 15.0) -> Outreach:
        """The outreach once it left queued/sending (deferred counts as settled)."""
        async with asyncio.timeout(within_s):
            while True:
                found = await self.service.get(outreach_id)
                if found.state not in (OutreachState.QUEUED, OutreachState.SENDING):
                    return found
                await asyncio.sleep(0.05)


OpenGateway = Callable[..., Awaitable[Gateway]]


def order_delayed(event_id: str = "evt-1", **extra: Any) -> dict[str, Any]:
    return {"id": event_id, "type": "order.delayed", "customer": {"account": "C-1001"},
            "data": {"order_id": "1001", "new_eta": "Friday"}, **extra}  # fmt: skip


def settings_for(store_url: str, data_dir: Path, api_url: str, relay_url: str, **extra: Any) -> (
    dict[str, Any]
):  # fmt: skip
    return {
        "database_url": store_url, "data_dir": data_dir, "public_url": PUBLIC_URL,
        "secret_key": "outreach-test-secret-0123456789", "api_token": TOKEN,
        "twilio_account_sid": ACCOUNT_SID, "twilio_auth_token": AUTH_TOKEN,
        "twilio_api_url": api_url, "twilio_sms_from": OUR_NUMBER, "sms_send_timeout_s": 2.0,
        "email_address": SUPPORT, "email_relay": relay_url,
        "outreach_quiet_hours": "", "outreach_poll_s": 0.05,
        "outbox_retry_base_s": 0.05, "outbox_poll_s": 0.05, "outreach_send_rate": 100.0,
        **extra,
    }  # fmt: skip


@pytest.fixture
async def relay() -> AsyncIterator[CatchingRelay]:
    server = CatchingRelay()
    yield server
    await server.close()


@pytest.fixture
async def open_gateway(
    store_url: str,
    tmp_path: Path,
    twilio_rest: FakeTwilioRest,
    relay: CatchingRelay,
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
) -> OpenGateway:
    api_url = await twilio_rest.start()
    relay_url = await relay.start()

    async def open_(before: Callable[[web.Application], None] | None = None,
                    **extra: Any) -> Gateway:  # fmt: skip
        values = settings_for(store_url, tmp_path / "data", api_url, relay_url, **extra)
        app = create_app(load_settings(**values))
        if before is not None:
            before(app)
        client = await aiohttp_client(app)
        return Gateway(client, twilio_rest, relay)

    return open_
