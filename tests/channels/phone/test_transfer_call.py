"""A whole call handed to a rep: over the real Media Stream websocket, the caller asks
for a person, hears the hold prompt, is moved into the conference (which ends the
stream, as Twilio does), and a rep is rung, briefed and connected."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pytest_aiohttp import AiohttpClient

from channels.phone.simulator import TwilioSimulator
from channels.phone.transfer_state import TransferState
from gateway.app import STORE
from gateway.models import AuthorKind, ConversationState, Identity, IdentityKind
from tests.channels.phone.calls import (
    ACCOUNT_SID,
    FakeTwilioRest,
    FixtureTranscriber,
    Recording,
    eventually,
    signatures,
)
from tests.channels.phone.transfers import (
    CALLER_ID,
    JANE,
    REPS,
    call_status,
    conference_event,
    conference_of,
    gather_of,
    gather_result,
    kinds,
    transfer_app,
    transfers_of,
    twilio_post,
)


async def test_a_caller_asking_for_a_person_is_transferred_warm(
    tmp_path: Path,
    aiohttp_client: AiohttpClient,
    recordings: dict[str, Recording],
    twilio_rest: FakeTwilioRest,
) -> None:
    api = await twilio_rest.start()
    app = transfer_app(tmp_path, api, FixtureTranscriber(recordings))
    client = await aiohttp_client(app)
    store, transfers = app[STORE], transfers_of(app)
    sim = TwilioSimulator(
        str(client.make_url("")), signatures(), account_sid=ACCOUNT_SID, caller=JANE
    )
    twilio_rest.live.add(sim.call_sid)
    stopping: list[asyncio.Task[None]] = []

    def redirected(call_sid: str, twiml: str) -> None:
        # Twilio runs the new TwiML at once: the call's <Connect><Stream> stops.
        if call_sid == sim.call_sid and not stopping:
            stopping.append(asyncio.create_task(sim.hang_up()))

    twilio_rest.on_redirect = redirected
    assert await sim.start_call()
    async with asyncio.timeout(20):
        await sim.until(lambda: bool(sim.received.marks))
        await sim.wait_quiet()
    await sim.say(recordings["talk_to_person"].mulaw)
    await twilio_rest.wait_until(lambda: len(twilio_rest.created) == 1, within_s=30)
    await asyncio.gather(*stopping)

    # The caller heard the agent's answer and the hold prompt to its end before the move.
    customer = await store.find_customer(Identity(kind=IdentityKind.PHONE, value=JANE))
    assert customer is not None
    [message] = await store.history(customer.id, limit=1)
    conversation = await store.get_conversation(message.conversation_id)
    said = await store.conversation_messages(conversation.id)
    hold = said[-1]
    assert (hold.author, hold.text) == (
        AuthorKind.AGENT, "One moment please, I am connecting you to a person."
    )  # fmt: skip
    assert hold.timing is not None  # its last mark came back: it was heard
    [(moved_at, moved_sid, moved)] = [r for r in twilio_rest.requests if "Twiml" in r[2]]
    assert moved_sid == sim.call_sid
    last_mark_at, last_mark = sim.received.marks[-1]
    assert int(last_mark.split(":")[0]) == hold.id and last_mark_at <= moved_at
    held = conference_of(moved["Twiml"])

    # The media session ended because the call moved, not because the caller hung up.
    async def ended() -> list[str]:
        events = await store.events(conversation.id)
        return [e.data["reason"] for e in events if e.kind == "phone.call_ended"]

    assert await eventually(ended) == [f"moved to conference {held.text}"]

    # The rep is rung, hears the brief, presses 1 and joins the caller.
    transfer = transfers.of_caller(sim.call_sid)
    assert transfer is not None and transfer.state is TransferState.RINGING
    [rep] = twilio_rest.created
    assert (rep.form["To"], rep.form["From"]) == (REPS[0], CALLER_ID)
    answer_url, brief_url = gather_of(rep.form["Twiml"])
    assert (await client.get(brief_url.removeprefix(sim.signatures.public_url))).status == 200
    await twilio_post(client, rep.form["StatusCallback"], call_status(rep.sid, "in-progress", 1))
    joined = await twilio_post(client, answer_url, gather_result(rep.sid, "1"))
    assert conference_of(await joined.text()).text == held.text
    conversation = await store.get_conversation(conversation.id)
    assert conversation.state is ConversationState.WITH_REP

    # The caller hangs up at the end: the conference says so.
    leave = conference_event("participant-leave", sim.call_sid, held.text or "")
    await twilio_post(client, held.get("statusCallback", ""), leave)
    assert transfer.state is TransferState.COMPLETED
    assert await kinds(store, conversation.id) == [
        "transfer.requested", "transfer.ringing", "transfer.briefing", "transfer.connected",
        "transfer.completed",
    ]  # fmt: skip
