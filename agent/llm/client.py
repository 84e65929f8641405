"""`LlmClient`: chat completions over `openai.AsyncOpenAI`, for any OpenAI-compatible
server (OpenAI, vLLM, Ollama, llama.cpp's server).

This is the edge: every vendor error (HTTP status, timeout, dropped connection,
a stream that ends without a finish reason) leaves it as `gateway.errors.LlmError`.
Answers stream; `complete` hands each piece of text to `on_text` as it arrives and
returns the whole message, tool calls assembled from their pieces.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import openai

from gateway.errors import LlmError

TextSink = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One function call the model asked for; `arguments` is its raw JSON text."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Completion:
    """One assistant message: text and/or tool calls."""

    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str = "stop"

    def as_message(self) -> dict[str, Any]:
        """The assistant message to append to the conversation sent next."""
        message: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in self.tool_calls
            ]
        return message


@dataclass
class LlmUsage:
    """Tokens a turn's completions consumed, as the server counts them (each response's
    `usage`; streamed, its last chunk when `stream_options.include_usage` is asked)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, usage: Any) -> None:
        if usage is None:
            return
        self.prompt_tokens += int(getattr(usage, "prompt_tokens", 0) or 0)
        self.completion_tokens += int(getattr(usage, "completion_tokens", 0) or 0)


@dataclass
class _Partial:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class LlmClient:
    """One `AsyncOpenAI` client shared by every conversation."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 8.0,
        max_retries: int = 1,
        temperature: float = 0.2,
    ) -> None:
        self.model = model
        self.temperature = temperature
        # Local servers (vLLM, Ollama) take any key; the client insists on one.
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or "not-needed",
            timeout=timeout_s,
            max_retries=max_retries,
        )

    async def complete(
        self,
        messages: Sequence[dict[str, Any]],
        *,
        tools: Sequence[dict[str, Any]] = (),
        on_text: TextSink | None = None,
        usage: LlmUsage | None = None,
    ) -> Completion:
        """Stream one completion, its tokens added to `usage`. Raises LlmError (never an
        `openai` error)."""
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": list(messages),
            "temperature": self.temperature,
            "stream": True,
        }
        if tools:
            kwargs["tools"] = list(tools)
        if usage is not None:  # the last chunk then carries the counts (choices empty)
            kwargs["stream_options"] = {"include_usage": True}
        text: list[str] = []
        partials: dict[int, _Partial] = {}
        finish: str | None = None
        started = False
        try:
            stream = await self._client.chat.completions.create(**kwargs)
            # Closed however this ends (a spent budget cancels us mid-stream): no leaked socket.
            async with stream:
                async for chunk in stream:
                    started = True
                    if usage is not None:
                        usage.add(getattr(chunk, "usage", None))
                    if not chunk.choices:
                        continue
                    choice = chunk.choices[0]
                    delta = choice.delta
                    if delta.content:
                        text.append(delta.content)
                        if on_text is not None:
                            await on_text(delta.content)
                    for piece in delta.tool_calls or ():
                        part = partials.setdefault(piece.index, _Partial())
                        part.id = piece.id or part.id
                        if piece.function is not None:
                            part.name = piece.function.name or part.name
                            part.arguments.append(piece.function.arguments or "")
                    finish = choice.finish_reason or finish
        except LlmError:
            raise
        except Exception as exc:  # the vendor edge: openai and its transport's errors
            if started:  # the answer had begun: whatever the cause, the stream broke
                raise LlmError("broken_stream", f"the answer stream broke: {exc}") from exc
            raise _translate(exc) from exc
        if finish is None:
            raise LlmError("broken_stream", "the answer stream ended without a finish reason")
        calls = tuple(
            ToolCall(id=p.id or f"call_{i}", name=p.name, arguments="".join(p.arguments))
            for i, p in sorted(partials.items())
        )
        return Completion(text="".join(text), tool_calls=calls, finish_reason=finish)

    async def complete_json(
        self,
        messages: Sequence[dict[str, Any]],
        *,
        name: str,
        schema: dict[str, Any],
        usage: LlmUsage | None = None,
    ) -> dict[str, Any]:
        """One non-streamed completion constrained to the JSON `schema` (structured
        output); its parsed object. Raises LlmError, "garbage" for anything not JSON."""
        try:
            kwargs: dict[str, Any] = {
                "model": self.model,
                "messages": list(messages),
                "temperature": 0.0,
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": name, "schema": schema},
                },
            }
            response = await self._client.chat.completions.create(**kwargs)
        except Exception as exc:
            raise _translate(exc) from exc
        if usage is not None:
            usage.add(getattr(response, "usage", None))
        content = response.choices[0].message.content if response.choices else None
        try:
            parsed = json.loads(content or "")
        except ValueError as exc:
            raise LlmError("garbage", "the structured answer is not JSON") from exc
        if not isinstance(parsed, dict):
            raise LlmError("garbage", "the structured answer is not a JSON object")
        return parsed

    async def close(self) -> None:
        await self._client.close()


def _translate(exc: Exception) -> LlmError:
    if isinstance(exc, openai.APITimeoutError):
        return LlmError("timeout", "the language model timed out")
    if isinstance(exc, openai.APIStatusError):
        return LlmError("status", f"the language model answered HTTP {exc.status_code}")
    if isinstance(exc, openai.APIConnectionError):
        return LlmError("connection", "the language model could not be reached")
    if isinstance(exc, openai.OpenAIError):
        return LlmError("garbage", f"the language model's answer was unusable: {exc}")
    # The transport's own errors (a connection cut mid-stream) are not wrapped by openai.
    return LlmError("broken_stream", f"the answer stream broke: {type(exc).__name__}")


__all__ = ["Completion", "LlmClient", "LlmUsage", "TextSink", "ToolCall"]
