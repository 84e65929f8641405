"""Fixtures for the email tests: a local SMTP server acting as the relay (it catches
the agent's replies) and the real app with its embedded SMTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.protocols import Brain
from gateway.settings import load_settings
from tests.support.mail import SUPPORT, CatchingRelay, Mailer

__all__ = ["SUPPORT", "CatchingRelay", "Mailer", "OpenMailer"]

OpenMailer = Callable[..., Awaitable[Mailer]]


@pytest.fixture
async def relay() -> AsyncIterator[CatchingRelay]:
    server = CatchingRelay()
    yield server
    await server.close()


@pytest.fixture
async def open_mailer(
    tmp_path: Path,
    relay: CatchingRelay,
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
) -> OpenMailer:
    relay_url = await relay.start()

    async def open_(brain: Brain | None = None, **extra: Any) -> Mailer:
        values: dict[str, Any] = {
            "data_dir": tmp_path,
            "email_address": SUPPORT,
            "email_listen": "127.0.0.1:0",
            "email_relay": relay_url,
        }
        values.update(extra)
        client = await aiohttp_client(create_app(load_settings(**values), brain=brain))
        return Mailer(client, relay)

    return open_


@pytest.fixture
async def mailer(open_mailer: OpenMailer) -> Mailer:
    return await open_mailer()
