"""Fixtures for the phone channel tests."""

from __future__ import annotations

import pytest

from tests.channels.phone.calls import Recording, load_recordings


@pytest.fixture(scope="session")
def recordings() -> dict[str, Recording]:
    """The speech fixtures (and a spoken goodbye), as 8 kHz μ-law."""
    return load_recordings()
