"""A call with the LLM agent: each finished sentence is spoken as the model writes it.

The real app (store, LLM brain with the embedded policy behind it, VAD, espeak-ng
voice) over a real media websocket (`TwilioSimulator`); the model is the local
server speaking the OpenAI chat-completions API (tests/support/fake_openai.py),
which holds its stream mid-answer on a gate the test opens, so "the first
sentence was heard before the model finished" is a fact of ordering, not a
measured time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from channels.phone.tools.simulator import TwilioSimulator
from gateway.app import STORE
from gateway.models import AuthorKind, ConversationState, Customer, Identity, IdentityKind, Message
from gateway.store.sqlite import SqliteStore
from tests.channels.phone.calls import (
    ACCOUNT_SID,
    FixtureTranscriber,
    Recording,
    eventually,
    phone_app,
    phone_settings,
    signatures,
)
from tests.support.fake_openai import FakeOpenAI, Step, text

JANE = "+15551234567"  # on account C-1001 in the demo backend
FRAMES_PER_S = 50  # 20 ms media frames
HANDOVER = "passing you to a member of our team"  # the agent's words handing over
FIRST = "Thanks for waiting, I can see your order 1001 on the account right here."
REST = " It shipped with UPS on Monday. It should reach you by Friday."
LONG_FIRST = (
    "Thanks for waiting, I have your account open now and I can see order 1001, which"
    " was placed two weeks ago, paid in full, packed at our warehouse in Ohio, and"
    " handed to the carrier together with the rest of the items you asked for."
)


@dataclass
class Line:
    sim: TwilioSimulator
    store: SqliteStore
    conversation_id: int

    async def messages(self) -> list[Message]:
        return await self.store.conversation_messages(self.conversation_id)

    def answer_marks(self, after: int) -> list[str]:
        """Names of the marks echoed since the first `after` marks."""
        return [name for _, name in self.sim.received.marks[after:]]


@pytest.fixture
async def llm() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def line(
    tmp_path: Path,
    aiohttp_client: AiohttpClient,
    recordings: dict[str, Recording],
    llm: FakeOpenAI,
) -> AsyncIterator[Line]:
    """Jane on a call with the LLM agent, greeted, the line quiet."""
    # The model's stream is held on a gate until the test has seen what it waits for, which
    # takes seconds on a loaded machine: the turn's time limits are not what these tests
    # check, so they are set far above those waits (a spent budget would fall back).
    settings = phone_settings(
        tmp_path, llm_base_url=llm.base_url, llm_model="test-model", llm_max_retries=0,
        llm_timeout_s=60, llm_budget_phone_s=60, agent_timeout_s=90,
    )  # fmt: skip
    app = phone_app(settings, FixtureTranscriber(recordings))
    client: TestClient = await aiohttp_client(app)  # type: ignore[type-arg]
    sim = TwilioSimulator(
        str(client.make_url("")), signatures(), account_sid=ACCOUNT_SID, caller=JANE
    )
    assert await sim.start_call()
    async with asyncio.timeout(20):
        await sim.until(lambda: bool(sim.received.marks))
        await sim.wait_quiet()
    store = app[STORE]
    assert isinstance(store, SqliteStore)
    greeting = (await store.history((await _jane(store)).id))[-1]
    yield Line(sim, store, greeting.conversation_id)
    await sim.hang_up()


async def _jane(store: SqliteStore) -> Customer:
    customer = await store.find_customer(Identity(kind=IdentityKind.PHONE, value=JANE))
    assert customer is not None
    return customer


def _mark_ids(names: list[str]) -> list[int]:
    return [int(name.split(":")[0]) for name in names]


async def test_the_first_sentence_is_heard_before_the_model_has_finished(
    line: Line, llm: FakeOpenAI, recordings: dict[str, Recording]
) -> None:
    gate = asyncio.Event()  # the model writes the first sentence, then waits for this
    llm.add(text(FIRST + REST, chunk_chars=5, gate=gate, gate_after=len(FIRST) + 5))
    sim = line.sim
    media_before, marks_before = len(sim.received.media), len(sim.received.marks)
    await sim.say(recordings["order_status"].mulaw)
    async with asyncio.timeout(20):
        await sim.until(lambda: len(sim.received.media) > media_before)
    # The caller hears the answer while the model is still held mid-answer: nothing of
    # this turn is stored yet, the last message is the caller's own.
    assert not gate.is_set()
    assert (await line.messages())[-1].author is AuthorKind.CUSTOMER
    gate.set()
    async with asyncio.timeout(20):
        await sim.wait_quiet()
    await asyncio.sleep(0.1)  # the timing is stored right after the last mark
    asked, answer = (await line.messages())[-2:]
    assert asked.text == recordings["order_status"].text
    assert answer.author is AuthorKind.AGENT
    assert answer.text == FIRST + REST  # the whole answer, stored once
    assert answer.timing is not None and answer.timing.end_ms > answer.timing.start_ms
    # Spoken once: one mark per sentence, the first under the provisional id (it played
    # before the answer was stored), later ones under the stored message's id.
    marks = _mark_ids(line.answer_marks(marks_before))
    assert len(marks) == 3 and marks[0] < 0 and set(marks) <= {marks[0], answer.id}
    [turn] = (await sim.get_json(f"/twilio/calls/{sim.call_sid}"))["turns"]
    assert turn["streamed"] is True and turn["reply_id"] == answer.id
    points = ["speech_end_ms", "utterance_end_ms", "transcript_ms", "reply_ms", "first_audio_ms"]
    times = [turn[name] for name in points]
    assert all(isinstance(t, int) for t in times) and times == sorted(times), turn
    assert turn["first_audio_ms"] <= turn["stored_ms"]  # heard before the answer was complete
    assert len(llm.requests) == 1 and llm.requests[0]["stream"] is True


async def test_barge_in_during_a_streamed_answer_cuts_the_stored_text(
    line: Line, llm: FakeOpenAI, recordings: dict[str, Recording]
) -> None:
    gate = asyncio.Event()
    answer_text = LONG_FIRST + REST
    llm.add(text(answer_text, chunk_chars=8, gate=gate, gate_after=len(LONG_FIRST) + 8))
    sim = line.sim
    media_before, clears = len(sim.received.media), len(sim.received.clears)
    await sim.say(recordings["order_status"].mulaw)
    # The caller speaks over the first sentence ("Let me talk to a person.") once the
    # gateway has sent a second of it: what was heard is counted on the gateway's own
    # playback schedule, so the caller waits on that, not on the test machine's clock.
    async with asyncio.timeout(20):
        await sim.until(lambda: len(sim.received.media) > media_before + FRAMES_PER_S)
    await sim.say(recordings["talk_to_person"].mulaw)
    async with asyncio.timeout(20):  # the gateway may still be behind the caller's audio
        await sim.until(lambda: len(sim.received.clears) > clears)  # barge-in sends clear

    async def interruption_stored() -> bool:
        return any(m.text == recordings["talk_to_person"].text for m in await line.messages())

    # Only once the interruption is stored does the model finish its answer, so the
    # answer is stored after the cut, and after the interruption.
    await eventually(interruption_stored, within_s=30)
    gate.set()

    async def cut_and_handed_over() -> bool:
        # The cut is stored by a task of the call's, the handover by the interruption's
        # turn: wait for both rather than for a guessed time.
        events = await line.store.events(line.conversation_id)
        conversation = await line.store.get_conversation(line.conversation_id)
        handed = conversation.state is not ConversationState.BOT
        return handed and any(e.kind == "message.cut" for e in events)

    await eventually(cut_and_handed_over, within_s=30)
    async with asyncio.timeout(20):
        await sim.wait_quiet()
    said = await line.messages()
    asked = [m.text for m in said].index(recordings["order_status"].text)
    # The interruption was stored while the model was still writing: the answer (stored
    # when the model finished) comes after it in the conversation.
    interruption, answer, *later = said[asked + 1 :]
    assert interruption.text == recordings["talk_to_person"].text
    assert answer.author is AuthorKind.AGENT
    heard = answer.text.split()
    assert 0 < len(heard) < len(LONG_FIRST.split())
    assert LONG_FIRST.split()[: len(heard)] == heard  # the words the caller heard
    events = await line.store.events(line.conversation_id)
    [cut] = [e for e in events if e.kind == "message.cut" and e.data["message_id"] == answer.id]
    assert cut.data["original"] == answer_text and cut.data["text"] == answer.text
    # The interruption was heard as a turn of its own: a handover, then the hold prompt.
    assert HANDOVER in later[0].text


async def test_an_llm_failure_mid_answer_keeps_whole_sentences_and_falls_back(
    line: Line, llm: FakeOpenAI, recordings: dict[str, Recording]
) -> None:
    gate = asyncio.Event()
    said_first = "Let me check that order for you."
    # The stream breaks off inside the second sentence, once the caller heard the first.
    llm.add(Step("broken", content=f"{said_first} It is on its way to", chunk_chars=5,
                 gate=gate, gate_after=len(said_first) + 5))  # fmt: skip
    sim = line.sim
    media_before, marks_before = len(sim.received.media), len(sim.received.marks)
    await sim.say(recordings["order_status"].mulaw)
    async with asyncio.timeout(20):
        await sim.until(lambda: len(sim.received.media) > media_before)
    gate.set()
    async with asyncio.timeout(20):
        await sim.wait_quiet()
    await asyncio.sleep(0.1)
    answer = (await line.messages())[-1]
    assert answer.author is AuthorKind.AGENT
    # What was said stays in front; the broken half sentence is never said; the embedded
    # policy answers the rest (it asks for the order number), and all of it is stored.
    assert answer.text.startswith(f"{said_first} ")
    assert "on its way" not in answer.text
    assert "order number" in answer.text
    events = await line.store.events(line.conversation_id)
    assert any(e.kind == "llm.fallback" for e in events)
    # Spoken once: the marks of this answer cover its sentences exactly, no repeat.
    names = line.answer_marks(marks_before)
    assert _mark_ids(names)[0] < 0 and set(_mark_ids(names)[1:]) == {answer.id}
    assert answer.timing is not None
    assert not sim.received.clears


async def test_a_streamed_goodbye_is_heard_before_the_agent_hangs_up(
    line: Line, llm: FakeOpenAI, recordings: dict[str, Recording]
) -> None:
    llm.add(text("Thanks for calling, Jane. Goodbye!", chunk_chars=4))
    sim = line.sim
    marks_before = len(sim.received.marks)
    await sim.say(recordings["goodbye"].mulaw)
    async with asyncio.timeout(20):
        await sim.until(lambda: sim.closed)
    answer = (await line.messages())[-1]
    assert answer.text == "Thanks for calling, Jane. Goodbye!"
    # Both sentences were played and their marks came back before the line closed.
    echoed = [(at, name) for at, name in sim.received.marks[marks_before:]]
    assert len(echoed) == 2 and not sim.received.clears
    assert sim.received.closed_at is not None and echoed[-1][0] <= sim.received.closed_at
