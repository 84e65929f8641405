"""The handover brief when the LLM brain hands over: structured output first,
the embedded template (agent/brief.py) when that fails.

The structure is `EscalateArgs` (agent/llm/tools.py): the model fills it as
the `escalate` tool's arguments, or, when those are unusable, in a separate
structured-output request constrained by its JSON schema. Whatever the model
wrote, every text field is PII-masked and shortened before it reaches the
queue. Handovers the gateway decides on its own (anger, a request for a person,
repeated failure) use the template: they must not wait on the model.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from agent.brief import build_brief, quote
from agent.intents import parse
from agent.llm.client import LlmClient, LlmUsage
from agent.llm.tools import EscalateArgs
from gateway.errors import LlmError
from gateway.models import HandoffBrief, Sentiment

BRIEF_SCHEMA: dict[str, Any] = EscalateArgs.model_json_schema()

_ASK = (
    "Write the handover brief for the person taking over this conversation, as JSON"
    " matching the schema. Never include card numbers, passwords or codes."
)


def brief_from_args(
    raw: str | dict[str, Any] | None, *, sentiment: Sentiment
) -> HandoffBrief | None:
    """The brief from the model's `escalate` arguments; None when they are unusable."""
    if raw is None:
        return None
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
        args = EscalateArgs.model_validate(data)
    except (ValueError, ValidationError):
        return None
    return _to_brief(args, sentiment)


async def structured_brief(
    client: LlmClient,
    messages: list[dict[str, Any]],
    *,
    sentiment: Sentiment,
    usage: LlmUsage | None = None,
) -> HandoffBrief | None:
    """Ask the model for the brief as structured output; None on any failure."""
    try:
        data = await client.complete_json(
            [*messages, {"role": "system", "content": _ASK}],
            name="handover_brief",
            schema=BRIEF_SCHEMA,
            usage=usage,
        )
    except LlmError:
        return None
    return brief_from_args(data, sentiment=sentiment)


def template_brief(
    text: str,
    *,
    reason: str,
    sentiment: Sentiment,
    tried: tuple[str, ...] = (),
    confidence: float = 0.5,
    verified: bool = True,
) -> HandoffBrief:
    """The embedded policy's template, from the customer's latest message."""
    parsed = parse(text)
    return build_brief(
        topic=parsed.topic,
        customer_words=text,
        tried=tried,
        confidence=confidence,
        sentiment=sentiment,
        reason=reason,
        order_id=parsed.order_id,
        verified=verified,
    )


def _to_brief(args: EscalateArgs, sentiment: Sentiment) -> HandoffBrief:
    step = quote(args.next_step)
    if sentiment in (Sentiment.ANGRY, Sentiment.NEGATIVE) and sentiment.value not in step:
        step = f"The customer is {sentiment.value}: acknowledge that first. {step}"
    return HandoffBrief(
        need=quote(args.need),
        tried=tuple(quote(t) for t in args.tried if t.strip()) or ("nothing recorded",),
        missing=tuple(quote(m) for m in args.missing if m.strip()),
        next_step=step,
        confidence=round(args.confidence, 3),
        sentiment=sentiment,
        queue=args.queue,
        reason=quote(args.reason),
    )


__all__ = ["BRIEF_SCHEMA", "brief_from_args", "structured_brief", "template_brief"]
