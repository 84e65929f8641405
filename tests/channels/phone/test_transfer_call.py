"""A whole call handed to a rep: over the real Media Stream websocket, the caller asks
for a person, hears the hold prompt, is moved into the conference (which ends the
stream, as Twilio does), and a rep is rung, briefed and connected."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from channels.phone.tools.simulator import TwilioSimulator
from channels.phone.transfer.state import TransferState
from gateway.app import STORE
from gateway.models import AuthorKind, ConversationState, Identity, IdentityKind
from gateway.routing.models import Presence, RepDraft
from gateway.routing.passwords import hash_password
from gateway.routing.state import ROUTING
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

ALICE = "+15550100001"


async def ask_for_a_person(
    client: TestClient[Any, Any], recordings: dict[str, Recording], twilio_rest: FakeTwilioRest
) -> TwilioSimulator:
    """Jane calls, asks for a person and is moved to the conference (which ends her
    stream, as Twilio does) by the time the first rep's phone rings."""
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
    return sim


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
    sim = await ask_for_a_person(client, recordings, twilio_rest)

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


async def test_a_caller_asking_for_a_person_rings_the_phone_of_the_rep_routing_picks(
    tmp_path: Path,
    aiohttp_client: AiohttpClient,
    recordings: dict[str, Recording],
    twilio_rest: FakeTwilioRest,
) -> None:
    api = await twilio_rest.start()
    app = transfer_app(tmp_path, api, FixtureTranscriber(recordings))
    client = await aiohttp_client(app)
    service, routing = app[ROUTING].service, app[ROUTING].store
    assert service is not None and routing is not None
    draft = RepDraft(username="alice", display_name="Alice", password_hash=hash_password("pw"),
                     skills=("general", "billing", "technical"), phone=ALICE)  # fmt: skip
    alice = await service.set_presence((await service.add_rep(draft)).id, Presence.AVAILABLE)
    sim = await ask_for_a_person(client, recordings, twilio_rest)

    # Her phone rings, not the configured lines: routing had a rep for it.
    [rep] = twilio_rest.created
    assert (rep.form["To"], rep.form["From"]) == (ALICE, CALLER_ID)
    # The call was reserved before the agent's handover queued it: the only offer
    # ever made for it is the one her ringing phone stands for.
    offers = [e.data for e in await routing.console_events(alice.id, (), 0, 200)
              if e.kind == "offer"]  # fmt: skip
    assert len(offers) == 1 and offers[0]["rings_phone"] is True
    transfer = transfers_of(app).of_caller(sim.call_sid)
    assert transfer is not None and transfer.state is TransferState.RINGING

    await twilio_post(client, rep.form["StatusCallback"],
                      call_status(rep.sid, "in-progress", 1, ALICE))  # fmt: skip
    answer_url, _ = gather_of(rep.form["Twiml"])
    await twilio_post(client, answer_url, gather_result(rep.sid, "1"))
    assert transfer.state is TransferState.CONNECTED
    held = service.router.held[transfer.conversation_id]
    assert held.rep_id == alice.id
