"""Fixtures: the real demo backend on a temporary SQLite file and the real KB."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.demo_backend import DemoBackend
from agent.kb import KnowledgeBase
from agent.policy import EmbeddedPolicy
from agent.understand import Matcher
from tests.agent.harness import MemoryLedger


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    return KnowledgeBase()


@pytest.fixture(scope="session")
def matcher() -> Matcher:
    """The real WordLlama model (from the installed wheel, never downloaded), loaded once."""
    return Matcher.load()


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[DemoBackend]:
    demo = DemoBackend(tmp_path / "backend.sqlite3")
    yield demo
    await demo.close()


@pytest.fixture
def ledger() -> MemoryLedger:
    return MemoryLedger()


@pytest.fixture
def policy(
    backend: DemoBackend, ledger: MemoryLedger, kb: KnowledgeBase, matcher: Matcher
) -> EmbeddedPolicy:
    """The policy as the gateway builds it: patterns plus the nearest-exemplar matcher."""
    return EmbeddedPolicy(backend, ledger, kb, handover_threshold=0.45, matcher=matcher)
