"""Fixtures every test package may use: the real PostgreSQL and Redis (see
tests/support/services.py: skipped where absent, required in CI), and
`store_url`, which runs a test once per store backend, and `twilio_rest`, a local
server speaking Twilio's REST API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support import services
from tests.support.twilio_rest import FakeTwilioRest


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """Create the migrated template database once per test run."""
    try:
        services.create_template()
    except Exception as exc:
        services.unavailable("PostgreSQL", exc)
    yield services.TEMPLATE
    services.admin(f"DROP DATABASE IF EXISTS {services.TEMPLATE} WITH (FORCE)")


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    """The URL of a fresh, migrated database of this test's own."""
    name = services.fresh_database()
    yield services.database_url(name)
    services.drop_database(name)


@pytest.fixture
def redis_url() -> str:
    try:
        services.redis_ping()
    except Exception as exc:
        services.unavailable("Redis", exc)
    return services.REDIS_URL


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL, once for each backend: SQLite in tmp_path, a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gw.sqlite3'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
async def twilio_rest() -> AsyncIterator[FakeTwilioRest]:
    """A local server speaking Twilio's REST API, recording what was sent (not started:
    the test calls `start()` and points the real `twilio` client at it)."""
    server = FakeTwilioRest()
    yield server
    await server.close()
