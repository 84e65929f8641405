"""A local HTTP server that speaks the OpenAI chat-completions API, scripted per test.

The real `openai` client reaches it through `base_url`. Each request to
`POST /v1/chat/completions` takes the next `Step` from the script: a text
answer, tool calls, an HTTP error, a hang (the client times out), or a stream
that breaks off mid-answer. Streaming requests get server-sent events in the
API's chunk format; others get one JSON completion. Every request body is kept
in `requests`, so a test can assert what the model was shown.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

__all__ = ["FakeOpenAI", "Step", "broken", "hang", "status", "text", "tool_calls"]


@dataclass(frozen=True)
class Step:
    """One scripted response."""

    kind: str  # "text", "tools", "status", "hang", "broken"
    content: str = ""
    calls: tuple[tuple[str, str], ...] = ()  # (function name, raw JSON arguments)
    status: int = 200
    seconds: float = 0.0  # "hang": how long; "text": pause before the first token
    chunk_chars: int = 6  # streamed content comes in pieces this long
    # "text": after `gate_after` characters, wait for `gate` before sending the rest
    # (a test holds the stream mid-answer without timing anything).
    gate: asyncio.Event | None = field(default=None, compare=False)
    gate_after: int = 0
    chunk_delay_s: float = 0.0  # "text": pause between chunks (a token rate, for benches)
    tokens: tuple[int, int] = (10, 10)  # the `usage` answered: prompt, completion tokens


def text(
    content: str,
    *,
    first_token_s: float = 0.0,
    chunk_chars: int = 6,
    gate: asyncio.Event | None = None,
    gate_after: int = 0,
    chunk_delay_s: float = 0.0,
    tokens: tuple[int, int] = (10, 10),
) -> Step:
    return Step(
        "text",
        content=content,
        seconds=first_token_s,
        chunk_chars=chunk_chars,
        gate=gate,
        gate_after=gate_after,
        chunk_delay_s=chunk_delay_s,
        tokens=tokens,
    )


def tool_calls(
    *calls: tuple[str, str | dict[str, Any]], content: str = "", tokens: tuple[int, int] = (10, 10)
) -> Step:
    raw = tuple((n, a if isinstance(a, str) else json.dumps(a)) for n, a in calls)
    return Step("tools", content=content, calls=raw, tokens=tokens)


def status(code: int) -> Step:
    return Step("status", status=code)


def hang(seconds: float = 30.0) -> Step:
    return Step("hang", seconds=seconds)


def broken(content: str = "Let me check") -> Step:
    return Step("broken", content=content)


@dataclass
class FakeOpenAI:
    """The scripted server; `async with` starts it on 127.0.0.1."""

    script: list[Step] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    repeat: Step | None = None  # the answer once the script is spent (benches); None: a 500
    _server: TestServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "server not started"
        return f"http://127.0.0.1:{self._server.port}/v1"

    def add(self, *steps: Step) -> None:
        self.script.extend(steps)

    async def __aenter__(self) -> FakeOpenAI:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        await self._server.close()

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        if not self.script and self.repeat is None:
            return _error(500, "script exhausted")
        step = self.script.pop(0) if self.script else self.repeat
        assert step is not None
        if step.kind == "status":
            return _error(step.status, f"scripted {step.status}")
        if step.kind == "hang":
            await asyncio.sleep(step.seconds)
            return _error(504, "hung")
        if not body.get("stream"):
            return web.json_response(_completion(body, step))
        return await self._stream(request, body, step)

    async def _stream(
        self, request: web.Request, body: dict[str, Any], step: Step
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if step.seconds:
            await asyncio.sleep(step.seconds)
        async for chunk in _chunks(body, step):
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        if step.kind == "broken":
            # Cut the connection mid-answer: no finish_reason, no [DONE].
            assert request.transport is not None
            request.transport.close()
            return response
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def _error(code: int, message: str) -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": "server_error", "code": None}}, status=code
    )


def _envelope(body: dict[str, Any], obj: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": obj,
        "created": int(time.time()),
        "model": body.get("model", "fake"),
    }


def _completion(body: dict[str, Any], step: Step) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": step.content or None}
    if step.calls:
        message["tool_calls"] = [
            {"id": f"call_{i}", "type": "function", "function": {"name": n, "arguments": a}}
            for i, (n, a) in enumerate(step.calls)
        ]
    finish = "tool_calls" if step.calls else "stop"
    return {
        **_envelope(body, "chat.completion"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": _usage(step),
    }


def _usage(step: Step) -> dict[str, int]:
    prompt, completion = step.tokens
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}  # fmt: skip


async def _chunks(body: dict[str, Any], step: Step) -> AsyncIterator[dict[str, Any]]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            **_envelope(body, "chat.completion.chunk"),
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    yield chunk({"role": "assistant", "content": ""})
    content = step.content
    for start in range(0, len(content), step.chunk_chars):
        if step.gate is not None and start >= step.gate_after:
            await step.gate.wait()
        yield chunk({"content": content[start : start + step.chunk_chars]})
        await asyncio.sleep(step.chunk_delay_s)
    if step.kind == "broken":
        return
    for i, (name, args) in enumerate(step.calls):
        head = {"index": i, "id": f"call_{i}", "type": "function"}
        yield chunk({"tool_calls": [{**head, "function": {"name": name, "arguments": ""}}]})
        # Arguments arrive in pieces, as real servers send them.
        half = len(args) // 2
        for piece in (args[:half], args[half:]):
            yield chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
    yield chunk({}, "tool_calls" if step.calls else "stop")
    if (body.get("stream_options") or {}).get("include_usage"):  # as OpenAI: a last chunk
        yield {**_envelope(body, "chat.completion.chunk"), "choices": [], "usage": _usage(step)}
