"""Build the agent from settings: `build_agent(settings, ledger)`, used by
`gateway.app` (the agent package owns its own wiring)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from agent.backend import Backend
from agent.codes import CodeBook
from agent.demo_backend import DemoBackend
from agent.kb import KnowledgeBase
from agent.policy import EmbeddedPolicy
from agent.understand import Matcher
from agent.verify import Verifier
from gateway.errors import ConfigError
from gateway.protocols import Brain, IdentityLinks, UsageLedger
from gateway.settings import Settings

DEMO_BACKEND_FILE = "demo_backend.sqlite3"


def open_backend(settings: Settings) -> Backend:
    """The configured business backend (only `demo` in this release)."""
    if settings.backend == "demo":
        return DemoBackend(settings.data_dir / DEMO_BACKEND_FILE)
    raise ConfigError(
        f"GATEWAY_BACKEND: unsupported backend {settings.backend!r}; this version supports 'demo'"
    )


async def build_agent(
    settings: Settings,
    ledger: UsageLedger,
    *,
    links: IdentityLinks | None = None,
    secret: bytes | None = None,
) -> tuple[Backend, Brain, Callable[[], Awaitable[None]]]:
    """The backend, the brain, and a coroutine function that closes them. With `links`
    (the store) and `secret` (the gateway's key) the agent sends one-time codes to link
    identities and confirm account actions (agent/verify.py); without, it sends none."""
    backend = open_backend(settings)
    kb = KnowledgeBase(settings.kb_dir)
    # The model is read once, off the loop (~0.3 s); a query then costs ~0.1 ms.
    matcher = await asyncio.to_thread(Matcher.load)
    verifier = None
    if links is not None and secret is not None:
        codes = CodeBook(secret, ttl_s=settings.otp_ttl_s, attempts=settings.otp_attempts)
        verifier = Verifier(
            codes,
            links,
            sends_per_hour=settings.otp_sends_per_hour,
            target_sends_per_day=settings.otp_sends_per_target_per_day,
        )
    policy = EmbeddedPolicy(
        backend,
        ledger,
        kb,
        handover_threshold=settings.handover_threshold,
        resets_per_day=settings.password_resets_per_day,
        verifier=verifier,
        matcher=matcher,
    )
    brain: Brain = policy
    client = None
    if settings.llm_enabled:
        from agent.llm.wiring import build_llm_brain  # only with an LLM configured

        brain, client = build_llm_brain(settings, policy, backend, ledger, kb)

    async def close() -> None:
        if client is not None:
            await client.close()
        await backend.close()
        kb.close()

    return backend, brain, close


__all__ = ["build_agent", "open_backend"]
