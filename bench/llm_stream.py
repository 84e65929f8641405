"""Phone turn with an LLM: when does the caller hear the first sentence?

    .venv/bin/python bench/llm_stream.py [--ttft 0.35] [--tokens-per-s 40] [--runs 5]

A local OpenAI-compatible server (tests/support/fake_openai.py, reached by the real
`openai` client) answers with a realistic time to first token and token rate. The
LLM brain streams the answer sentence by sentence (`respond_stream`); each sentence is
synthesized with the real espeak-ng synthesizer as soon as it is complete, as the
phone channel would. Printed per run: time to the first complete sentence, to its
first audio, and to the whole answer; and, for contrast, when the first audio could
start if the whole answer were synthesized after it was complete.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.demo_backend import DemoBackend  # noqa: E402
from agent.kb import KnowledgeBase  # noqa: E402
from agent.llm.brain import LlmBrain, LlmConfig  # noqa: E402
from agent.llm.client import LlmClient  # noqa: E402
from channels.speech.tts import EspeakSynthesizer  # noqa: E402
from gateway.models import (  # noqa: E402
    AuthorKind,
    ChannelKind,
    Conversation,
    ConversationState,
    Customer,
    Direction,
    Identity,
    IdentityKind,
    Message,
    Verification,
)
from gateway.protocols import Decision, TurnContext  # noqa: E402
from tests.support.fake_openai import FakeOpenAI, text  # noqa: E402

ANSWER = (
    "Your headphones shipped three days ago with UPS. They should arrive the day after"
    " tomorrow. Would you like me to text you the tracking number?"
)


class NoLedger:
    async def count_events(self, customer_id: int, kind: str, since: datetime) -> int:
        return 0


def phone_turn() -> TurnContext:
    now = datetime.now(UTC)
    who = Customer(
        id=1, display_name="Jane", account_ref="C-1001", created_at=now,
        identities=(Identity(kind=IdentityKind.PHONE, value="+15551234567",
                             verified=Verification.CALLER_ID),),
    )  # fmt: skip
    conversation = Conversation(
        id=1, customer_id=1, state=ConversationState.BOT, channel=ChannelKind.PHONE,
        channels=(ChannelKind.PHONE,), version=1, created_at=now, updated_at=now,
    )  # fmt: skip
    message = Message(
        id=1, conversation_id=1, customer_id=1, seq=1, direction=Direction.INBOUND,
        author=AuthorKind.CUSTOMER, channel=ChannelKind.PHONE, text="where are my headphones?",
        created_at=now,
    )  # fmt: skip
    return TurnContext(customer=who, conversation=conversation, message=message)


async def one_run(
    brain: LlmBrain, llm: FakeOpenAI, synth: EspeakSynthesizer, args: argparse.Namespace
) -> tuple[float, float, float, float]:
    chars_per_chunk = 4  # about one token
    llm.add(text(ANSWER, first_token_s=args.ttft, chunk_chars=chars_per_chunk,
                 chunk_delay_s=1.0 / args.tokens_per_s))  # fmt: skip
    start = time.perf_counter()
    first_sentence = first_audio = done = 0.0
    async for item in brain.respond_stream(phone_turn()):
        if isinstance(item, Decision):
            done = time.perf_counter() - start
        elif not first_sentence:
            first_sentence = time.perf_counter() - start
            await synth.synthesize(item)
            first_audio = time.perf_counter() - start
    whole = time.perf_counter()
    await synth.synthesize(ANSWER)
    after_whole = done + (time.perf_counter() - whole)
    return first_sentence, first_audio, done, after_whole


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ttft", type=float, default=0.35, help="time to first token, s")
    parser.add_argument("--tokens-per-s", type=float, default=40.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    synth = EspeakSynthesizer()
    await synth.start()
    with tempfile.TemporaryDirectory() as tmp:
        backend = DemoBackend(Path(tmp) / "backend.sqlite3")
        kb = KnowledgeBase()
        async with FakeOpenAI() as llm:
            client = LlmClient(base_url=llm.base_url, model="bench", max_retries=0)
            brain = LlmBrain(client, None, backend, NoLedger(), kb,
                             config=LlmConfig(default_budget_s=30.0))  # fmt: skip
            rows = [await one_run(brain, llm, synth, args) for _ in range(args.runs)]
            await client.close()
        await backend.close()
        kb.close()
    await synth.close()
    print(f"time to first token {args.ttft:.2f} s, {args.tokens_per_s:.0f} tokens/s,"
          f" {len(ANSWER)} characters, {args.runs} runs (medians, seconds)")  # fmt: skip
    names = ("first sentence", "first audio (streamed)", "whole answer",
             "first audio (unstreamed)")  # fmt: skip
    for i, name in enumerate(names):
        print(f"  {name:<26} {statistics.median(r[i] for r in rows):6.3f}")


if __name__ == "__main__":
    asyncio.run(main())
