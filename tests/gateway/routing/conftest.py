"""Fixtures for routing tests: the real app on a temporary data dir."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.gateway.routing.desk import Desk, HandoverBrain, build

OpenDesk = Callable[..., Awaitable[Desk]]


@pytest.fixture
async def open_desk(
    tmp_path: Path,
    store_url: str,
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
) -> OpenDesk:
    """The desk on each store backend (SQLite, PostgreSQL: `store_url`)."""

    async def open_(**settings: Any) -> Desk:
        brain = HandoverBrain()
        settings.setdefault("database_url", store_url)
        settings.setdefault("secret_key", "desk-test-secret-0123456789")
        client = await aiohttp_client(build(tmp_path / "data", brain, **settings))
        return Desk(client, brain)

    return open_


@pytest.fixture
async def desk(open_desk: OpenDesk) -> Desk:
    return await open_desk()
