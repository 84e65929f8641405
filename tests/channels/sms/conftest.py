"""Fixtures for the SMS tests: a local Twilio REST stand-in and the real app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.protocols import Brain
from tests.channels.sms.texting import Texter, sms_settings
from tests.support.twilio_rest import FakeTwilioRest

OpenTexter = Callable[..., Awaitable[Texter]]


@pytest.fixture
async def open_texter(
    tmp_path: Path,
    twilio_rest: FakeTwilioRest,
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
) -> OpenTexter:
    """Start the real app (embedded agent unless `brain`) and a texter for `number`."""
    api_url = await twilio_rest.start()

    async def open_(brain: Brain | None = None, number: str | None = None, **extra: Any) -> Texter:
        settings = sms_settings(tmp_path, api_url, **extra)
        client = await aiohttp_client(create_app(settings, brain=brain))
        return Texter(client) if number is None else Texter(client, number)

    return open_


@pytest.fixture
async def texter(open_texter: OpenTexter) -> Texter:
    return await open_texter()
