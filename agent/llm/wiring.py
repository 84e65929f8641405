"""Build the `LlmBrain` from settings (called by agent/wiring.py when
GATEWAY_LLM_BASE_URL and GATEWAY_LLM_MODEL are set)."""

from __future__ import annotations

from agent.backend import Backend
from agent.kb import KnowledgeBase
from agent.llm.brain import LlmBrain, LlmConfig
from agent.llm.client import LlmClient
from agent.llm.prompts import Prompts
from agent.llm.tools import LLM_TOOLS
from gateway.errors import ConfigError
from gateway.models import ChannelKind
from gateway.protocols import Brain, UsageLedger
from gateway.settings import Settings


def llm_config(settings: Settings) -> LlmConfig:
    """The brain's limits from settings; unknown tool names are a ConfigError."""
    unknown = sorted(set(settings.llm_tools) - set(LLM_TOOLS))
    if unknown:
        raise ConfigError(f"GATEWAY_LLM_TOOLS: unknown tools {unknown}; known: {sorted(LLM_TOOLS)}")
    return LlmConfig(
        max_tool_steps=settings.llm_max_tool_steps,
        budgets_s={
            ChannelKind.PHONE: settings.llm_budget_phone_s,
            ChannelKind.SMS: settings.llm_budget_sms_s,
            ChannelKind.EMAIL: settings.llm_budget_email_s,
            ChannelKind.WEBCHAT: settings.llm_budget_chat_s,
        },
        default_budget_s=settings.llm_budget_chat_s,
        refund_limit_cents=settings.refund_approval_limit_cents,
        resets_per_day=settings.password_resets_per_day,
        allowed_tools=frozenset(settings.llm_tools or LLM_TOOLS),
        use_policy_fallback=settings.llm_fallback == "policy",
        history_window=settings.llm_history_messages,
        min_confidence=settings.llm_min_transcript_confidence,
    )


def build_llm_brain(
    settings: Settings,
    policy: Brain,
    backend: Backend,
    ledger: UsageLedger,
    kb: KnowledgeBase,
) -> tuple[LlmBrain, LlmClient]:
    """The brain and its client (the caller closes the client)."""
    prompts, config = Prompts(settings.llm_prompts_dir), llm_config(settings)  # fail before I/O
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    client = LlmClient(
        base_url=settings.llm_base_url,
        model=settings.llm_model,
        api_key=key,
        timeout_s=settings.llm_timeout_s,
        max_retries=settings.llm_max_retries,
    )
    brain = LlmBrain(
        client,
        policy,
        backend,
        ledger,
        kb,
        prompts=prompts,
        config=config,
    )
    return brain, client


__all__ = ["build_llm_brain", "llm_config"]
