"""`build_agent` from settings, as `gateway.app` uses it."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.wiring import DEMO_BACKEND_FILE, build_agent
from gateway.errors import ConfigError
from gateway.settings import Settings
from tests.agent.harness import Chat, MemoryLedger, customer, reply_text


async def test_build_agent_with_defaults(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", password_resets_per_day=1)
    ledger = MemoryLedger()
    backend, brain, close = await build_agent(settings, ledger)
    try:
        chat = Chat(brain, ledger, customer(1))
        decision = await chat.send("where is order 1001")
        assert "1Z999AA10123456784" in reply_text(decision)
        await chat.send("reset my password")
        refused = await chat.send("reset my password")
        assert [e.data.get("rule") for e in refused.events] == ["rate_limit"]
        assert (tmp_path / "data" / DEMO_BACKEND_FILE).is_file()
        assert await backend.get_account("C-1001") is not None
    finally:
        await close()


async def test_unknown_backend_is_a_config_error(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, backend="salesforce")
    with pytest.raises(ConfigError, match="GATEWAY_BACKEND"):
        await build_agent(settings, MemoryLedger())
