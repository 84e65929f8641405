"""Fixtures: the scripted OpenAI-compatible server, the real `openai` client
pointed at it, and an `LlmBrain` over the real demo backend and knowledge base."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from agent.demo_backend import DemoBackend
from agent.kb import KnowledgeBase
from agent.llm.brain import LlmBrain, LlmConfig
from agent.llm.client import LlmClient
from agent.policy import EmbeddedPolicy
from tests.agent.harness import MemoryLedger
from tests.support.fake_openai import FakeOpenAI

MakeBrain = Callable[..., LlmBrain]


@pytest.fixture
async def llm() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def make_brain(
    llm: FakeOpenAI,
    backend: DemoBackend,
    ledger: MemoryLedger,
    kb: KnowledgeBase,
    policy: EmbeddedPolicy,
) -> AsyncIterator[MakeBrain]:
    clients: list[LlmClient] = []

    def make(
        *, timeout_s: float = 5.0, max_retries: int = 0, fallback: bool = True, **config: Any
    ) -> LlmBrain:
        client = LlmClient(
            base_url=llm.base_url, model="test-model", timeout_s=timeout_s, max_retries=max_retries
        )
        clients.append(client)
        return LlmBrain(
            client,
            policy if fallback else None,
            backend,
            ledger,
            kb,
            config=LlmConfig(**config),
        )

    yield make
    for client in clients:
        await client.close()
