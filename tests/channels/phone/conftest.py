"""Fixtures for the phone channel tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.channels.phone.calls import FakeTwilioRest, Recording, load_recordings


@pytest.fixture(scope="session")
def recordings() -> dict[str, Recording]:
    """The speech fixtures (and a spoken goodbye), as 8 kHz μ-law."""
    return load_recordings()


@pytest.fixture
async def twilio_rest() -> AsyncIterator[FakeTwilioRest]:
    """A local server speaking Twilio's REST API (completing calls)."""
    server = FakeTwilioRest()
    yield server
    await server.close()
