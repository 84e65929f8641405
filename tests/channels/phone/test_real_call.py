"""A whole call recognised by the real Whisper tiny.en (the installed weights).

The real app over a real media websocket (`TwilioSimulator`), with the real
`WhisperTranscriber` on tiny.en instead of the fixture transcriber: the
caller's recorded words are recognised, stored with the recogniser's
confidence and answered (the end of each turn judged from the audio by Smart
Turn), the keypad works alongside speech, and a spoken
request for a person hands the call over.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

from channels.phone.tools.simulator import TwilioSimulator
from channels.speech.stt import WhisperTranscriber
from gateway.app import STORE
from gateway.models import (
    AuthorKind,
    ChannelKind,
    ConversationState,
    Identity,
    IdentityKind,
    Message,
)
from tests.channels.phone.calls import (
    ACCOUNT_SID,
    Recording,
    phone_app,
    phone_settings,
    signatures,
)

JANE = "+15551234567"  # on account C-1001 in the demo backend


@pytest.fixture
async def real_stt(tiny_en_model: Any) -> AsyncIterator[WhisperTranscriber]:
    stt = WhisperTranscriber(tiny_en_model, workers=2, timeout_s=60.0)
    yield stt
    await stt.close()


async def test_a_call_recognised_by_real_tiny_en_with_keys_and_speech(
    tmp_path: Path,
    aiohttp_client: AiohttpClient,
    recordings: dict[str, Recording],
    real_stt: WhisperTranscriber,
) -> None:
    # End of turn judged from the audio (Smart Turn), as GATEWAY_PHONE_END_OF_TURN=smart does.
    app = phone_app(phone_settings(tmp_path, phone_end_of_turn="smart"), real_stt)
    client = await aiohttp_client(app)
    store = app[STORE]
    sim = TwilioSimulator(
        str(client.make_url("")), signatures(), account_sid=ACCOUNT_SID, caller=JANE
    )
    assert await sim.start_call()
    async with asyncio.timeout(30):
        await sim.until(lambda: bool(sim.received.marks))
        await sim.wait_quiet()
    jane = await store.find_customer(Identity(kind=IdentityKind.PHONE, value=JANE))
    assert jane is not None
    conversation = await store.get_conversation((await store.history(jane.id))[-1].conversation_id)

    async def said() -> list[Message]:
        return await store.conversation_messages(conversation.id)

    async def turn(action: Any) -> list[Message]:
        before = len(await said())
        heard = len(sim.received.media)
        await action
        async with asyncio.timeout(45):
            await sim.until(lambda: len(sim.received.media) > heard)
            await sim.wait_quiet()
        await asyncio.sleep(0.1)
        return (await said())[before:]

    # A spoken question about an order, recognised and answered.
    asked, *answers = await turn(sim.say(recordings["order_number_spoken"].mulaw))
    assert (asked.author, asked.channel) == (AuthorKind.CUSTOMER, ChannelKind.PHONE)
    assert "order number" in asked.text.lower() and "1" in asked.text, asked.text
    assert asked.confidence is not None and 0.3 < asked.confidence <= 1.0
    assert answers and all(m.author is AuthorKind.AGENT for m in answers)

    # The order number on the keypad.
    keyed, *answers = await turn(sim.press("1001#"))
    assert (keyed.text, keyed.confidence) == ("Keyed in 1001", 1.0)
    assert any("1001" in m.text for m in answers), [m.text for m in answers]

    # Then, by voice, a person.
    asked, *answers = await turn(sim.say(recordings["talk_to_person"].mulaw))
    assert asked.text == "Let me talk to a person."
    assert asked.confidence is not None and asked.confidence > 0.3
    assert (await store.get_conversation(conversation.id)).state is ConversationState.QUEUED
    await sim.hang_up()
