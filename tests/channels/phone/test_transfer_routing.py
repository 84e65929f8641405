"""A call's warm transfer rings the reps routing offers it to: the phone numbers of
their profiles, best first by routing's own rule, each ring being that rep's offer.

The real app (store, routing, espeak-ng, REST client) against the local Twilio REST
stand-in (the real `twilio` client); the tests play Twilio's part with signed
callbacks, and the reps' part through the console API.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from channels.phone.transfer.state import TransferState
from channels.phone.transfer.warm import WarmTransfers
from gateway.app import DISPATCHER, STORE
from gateway.models import (
    AuthorKind,
    ChannelKind,
    Conversation,
    ConversationState,
    Event,
    Identity,
    IdentityKind,
    InboundMessage,
    Verification,
)
from gateway.protocols import Store
from gateway.routing.auth import COOKIE
from gateway.routing.front import RoutingFront
from gateway.routing.models import ConsoleEvent, Presence, Rep, RepDraft, WorkKind
from gateway.routing.passwords import hash_password
from gateway.routing.router import Router
from gateway.routing.service import RoutingService
from gateway.routing.state import ROUTING
from gateway.routing.store import RoutingStore
from tests.channels.phone.calls import FakeTwilioRest, eventually
from tests.channels.phone.transfers import (
    BRIEF,
    CALLER_SID,
    JANE,
    REPS,
    call_status,
    conference_of,
    gather_of,
    gather_result,
    queued_phone_conversation,
    transfer_app,
    transfer_events,
    transfers_of,
    twilio_post,
    xml,
)

PASSWORD = "correct horse battery"
PHONES = {name: f"+1555010000{n}" for n, name in enumerate(
    ("alice", "bob", "cleo", "dana", "erin", "fay"), start=1)}  # fmt: skip
OTHER_CALLERS = {"Kim Lee": "+15557770001", "Lee Park": "+15557770002"}
KIM_SID = "CA" + "8" * 32


@dataclass
class Desk:
    """The app with warm transfers on, and what a test needs of it."""

    app: web.Application
    client: TestClient[Any, Any]
    rest: FakeTwilioRest
    store: Store
    transfers: WarmTransfers
    service: RoutingService
    front: RoutingFront
    routing: RoutingStore

    @property
    def router(self) -> Router:
        return self.service.router

    async def rep(
        self, name: str, *, skills: tuple[str, ...] = ("billing",), phone: bool = True,
        presence: Presence = Presence.AVAILABLE,
    ) -> Rep:  # fmt: skip
        draft = RepDraft(username=name, display_name=name.title(), skills=skills,
                         password_hash=hash_password(PASSWORD),
                         phone=PHONES[name] if phone else None)  # fmt: skip
        rep = await self.service.add_rep(draft)
        return await self.service.set_presence(rep.id, presence)

    async def caller(self, name: str) -> Conversation:
        """Another caller's conversation, queued through routing's own handover."""
        conversation = await queued_phone_conversation(self.store, OTHER_CALLERS[name], name)
        customer = await self.store.get_customer(conversation.customer_id)
        await self.service.intake.handover(customer, conversation)
        return conversation

    async def console_takes(self, rep: Rep, conversation: Conversation) -> None:
        """`rep` accepts the console offer of `conversation` (the only way it is offered)."""
        [offer] = [o for o in (await self.front.overview(rep.id))["offers"]
                   if o["conversation_id"] == conversation.id]  # fmt: skip
        await self.front.accept(rep.id, offer["offer_id"])

    async def offers(self, rep: Rep) -> list[dict[str, Any]]:
        offers: list[dict[str, Any]] = (await self.front.overview(rep.id))["offers"]
        return offers

    async def console_events(self, rep: Rep, kind: str) -> list[ConsoleEvent]:
        queues = self.service.queues_of(rep.id)
        return [e for e in await self.routing.console_events(rep.id, queues, 0, 500)
                if e.kind == kind]  # fmt: skip

    async def login(self, name: str) -> dict[str, str]:
        """The headers of `name`'s console requests (the public URL is https, so the
        session cookie is Secure: the plain-http test client would not send it back)."""
        resp = await self.client.post(
            "/console/login", data=json.dumps({"username": name, "password": PASSWORD})
        )
        assert resp.status == 200, await resp.text()
        cookie = resp.cookies[COOKIE]
        assert cookie["secure"]
        return {"Cookie": f"{COOKIE}={cookie.value}", "X-CSRF-Token": (await resp.json())["csrf"]}

    async def me(self, session: dict[str, str]) -> dict[str, Any]:
        resp = await self.client.get("/console/api/me", headers=session)
        assert resp.status == 200
        data: dict[str, Any] = await resp.json()
        return data

    async def caller_says(self, text: str) -> None:
        caller = Identity(kind=IdentityKind.PHONE, value=JANE, verified=Verification.CALLER_ID)
        dispatcher = self.app[DISPATCHER]
        await dispatcher.handle(InboundMessage(channel=ChannelKind.PHONE, identity=caller,
                                               text=text, confidence=0.9))  # fmt: skip
        await dispatcher.drain()

    def rung(self) -> list[str]:
        return [call.form["To"] for call in self.rest.created]

    async def events(self, conversation: Conversation, kind: str) -> list[Event]:
        return [e for e in await self.store.events(conversation.id) if e.kind == kind]


MakeDesk = Callable[..., Awaitable[Desk]]


@pytest.fixture
async def make_desk(
    tmp_path: Path, aiohttp_client: AiohttpClient, twilio_rest: FakeTwilioRest
) -> AsyncIterator[MakeDesk]:
    async def make(numbers: tuple[str, ...] = ()) -> Desk:
        api = await twilio_rest.start()
        app = transfer_app(tmp_path, api, numbers=numbers)
        client = await aiohttp_client(app)
        twilio_rest.live.update({CALLER_SID, KIM_SID})
        state = app[ROUTING]
        assert state.service is not None and state.front is not None and state.store is not None
        return Desk(app, client, twilio_rest, app[STORE], transfers_of(app), state.service,
                    state.front, state.store)  # fmt: skip

    yield make


async def until(check: Callable[[], bool]) -> None:
    async def checked() -> bool:
        return check()

    await eventually(checked)


async def answer(desk: Desk, call_index: int, name: str, key: str) -> str:
    """The rep rung `call_index`-th answers, hears the brief and presses `key`: the
    TwiML their call gets."""
    call = desk.rest.created[call_index]
    status = call_status(call.sid, "in-progress", 2, PHONES[name])
    assert (await twilio_post(desk.client, call.form["StatusCallback"], status)).status == 204
    answer_url, _ = gather_of(call.form["Twiml"])
    return await (await twilio_post(desk.client, answer_url, gather_result(call.sid, key))).text()


async def no_answer(desk: Desk, call_index: int, name: str) -> None:
    call = desk.rest.created[call_index]
    for sequence, status in enumerate(("ringing", "no-answer"), start=1):
        got = await twilio_post(desk.client, call.form["StatusCallback"],
                                call_status(call.sid, status, sequence, PHONES[name]))  # fmt: skip
        assert got.status == 204


async def test_the_best_eligible_rep_rings_and_pressing_1_makes_them_the_holder(
    make_desk: MakeDesk,
) -> None:
    desk = await make_desk()
    fay = await desk.rep("fay")
    await desk.console_takes(fay, await desk.caller("Kim Lee"))  # fay is at her call capacity
    alice = await desk.rep("alice")
    lee = await desk.caller("Lee Park")
    await desk.console_takes(alice, lee)
    await desk.front.close(alice.id, lee.id, "resolved")  # alice was busy a moment ago
    bob = await desk.rep("bob")
    carl = await desk.rep("cleo", phone=False)  # no phone number in her profile
    dana = await desk.rep("dana", skills=("technical",))
    erin = await desk.rep("erin", presence=Presence.AWAY)

    jane = await queued_phone_conversation(desk.store)
    transfer = await desk.transfers.start(CALLER_SID, jane.id)
    # Who would ring, in routing's order: the queue's skill, available, a spare call,
    # a phone; bob was busy less recently than alice.
    [requested] = await desk.events(jane, "transfer.requested")
    assert requested.data["reps"] == [bob.id, alice.id]
    assert desk.rung() == [PHONES["bob"]]
    # Bob's ringing phone is his offer: his console shows it (and nobody else's does).
    [offer] = await desk.offers(bob)
    assert (offer["conversation_id"], offer["rings_phone"]) == (jane.id, True)
    for other in (alice, carl, dana, erin, fay):
        assert [o for o in await desk.offers(other) if o["conversation_id"] == jane.id] == []

    # Bob does not answer: his offer expires and alice's phone rings.
    await no_answer(desk, 0, "bob")
    assert desk.rung() == [PHONES["bob"], PHONES["alice"]]
    [closed] = await desk.console_events(bob, "offer.closed")
    assert closed.data == {"offer_id": offer["offer_id"], "status": "expired"}
    assert transfer.state is TransferState.RINGING

    # While it rings, alice's console shows the offer, the brief and what was said.
    session = await desk.login("alice")
    [ringing] = (await desk.me(session))["offers"]
    assert (ringing["conversation_id"], ringing["rings_phone"]) == (jane.id, True)
    view = await (
        await desk.client.get(f"/console/api/conversations/{jane.id}", headers=session)
    ).json()
    assert view["conversation"]["brief"]["need"] == BRIEF.need

    # She answers, hears the brief and presses 1: she joins the caller and holds it.
    joined = conference_of(await answer(desk, 1, "alice", "1"))
    assert joined.text == transfer.conference
    assert transfer.state is TransferState.CONNECTED
    me = await desk.me(session)
    assert me["offers"] == []
    assert [(h["conversation_id"], h["wrap_up"]) for h in me["held"]] == [(jane.id, False)]
    assert desk.router.load(alice.id, WorkKind.CALL) == 1
    conversation = await desk.store.get_conversation(jane.id)
    assert conversation.state is ConversationState.WITH_REP
    [assigned] = await desk.events(jane, "rep.assigned")
    assert (assigned.data["rep_id"], assigned.data["offer_id"]) == (alice.id, ringing["offer_id"])
    [connected] = await desk.events(jane, "transfer.connected")
    assert (connected.data["rep_id"], connected.data["rep_name"]) == (alice.id, "Alice")

    # The agent is silent now: what the caller says is stored and shown to alice only.
    await desk.caller_says("is anyone there")
    last = (await desk.store.conversation_messages(jane.id))[-1]
    assert (last.author, last.text) == (AuthorKind.CUSTOMER, "is anyone there")
    said = await desk.console_events(alice, "message")
    assert said[-1].data["message"]["text"] == "is anyone there"
    # Nobody without the skill, away, at call capacity or without a phone was rung.
    assert desk.rung() == [PHONES["bob"], PHONES["alice"]]


async def test_a_completed_call_stays_with_its_rep_for_wrap_up_and_frees_their_capacity(
    make_desk: MakeDesk,
) -> None:
    desk = await make_desk()
    alice = await desk.rep("alice")
    jane = await queued_phone_conversation(desk.store)
    transfer = await desk.transfers.start(CALLER_SID, jane.id)
    await answer(desk, 0, "alice", "1")
    assert transfer.state is TransferState.CONNECTED

    # A second call is handed over meanwhile: alice, on a call, is at her call capacity.
    kim = await queued_phone_conversation(desk.store, OTHER_CALLERS["Kim Lee"], "Kim Lee")
    second = await desk.transfers.start(KIM_SID, kim.id)
    assert second.state is TransferState.CALLBACK_OFFERED
    assert desk.rung() == [PHONES["alice"]]
    assert await desk.offers(alice) == []

    # Alice hangs up: the call is over; the conversation stays hers to wrap up.
    call = desk.rest.created[0]
    done = call_status(call.sid, "completed", 3, PHONES["alice"])
    assert (await twilio_post(desk.client, call.form["StatusCallback"], done)).status == 204
    assert transfer.state is TransferState.COMPLETED
    [wrap_up] = await desk.events(jane, "rep.wrap_up")
    assert wrap_up.data["rep_id"] == alice.id
    assert [e.data for e in await desk.console_events(alice, "wrap_up")] == [
        {"conversation_id": jane.id}
    ]
    # Her call capacity is free: the waiting call (a callback now) is offered to her.
    overview = await desk.front.overview(alice.id)
    assert [(h["conversation_id"], h["wrap_up"]) for h in overview["held"]] == [(jane.id, True)]
    assert [(o["conversation_id"], o["rings_phone"]) for o in overview["offers"]] == [
        (kim.id, False)
    ]
    # A new leader (or a restart) rebuilds the same picture from the store.
    await desk.router.stop()
    await desk.router.start()
    overview = await desk.front.overview(alice.id)
    assert [(h["conversation_id"], h["wrap_up"]) for h in overview["held"]] == [(jane.id, True)]
    assert desk.router.load(alice.id, WorkKind.CALL) == 1  # the offer of kim's call only

    # She closes it with a disposition from the console.
    session = await desk.login("alice")
    closed = await desk.client.post(
        f"/console/api/conversations/{jane.id}/close",
        data=json.dumps({"disposition": "refund-approved"}), headers=session,
    )  # fmt: skip
    assert closed.status == 200, await closed.text()
    assert (await desk.store.get_conversation(jane.id)).state is ConversationState.CLOSED
    [rep_closed] = await desk.events(jane, "rep.closed")
    assert rep_closed.data["disposition"] == "refund-approved"
    assert jane.id not in desk.router.wrap_up
    assert [h["conversation_id"] for h in (await desk.me(session))["held"]] == []


async def test_with_nobody_eligible_the_caller_is_offered_a_callback_and_the_call_waits(
    make_desk: MakeDesk,
) -> None:
    desk = await make_desk()
    cleo = await desk.rep("cleo", phone=False)
    await desk.rep("dana", skills=("technical",))
    await desk.rep("erin", presence=Presence.AWAY)

    jane = await queued_phone_conversation(desk.store)
    transfer = await desk.transfers.start(CALLER_SID, jane.id)
    assert transfer.state is TransferState.CALLBACK_OFFERED
    assert desk.rung() == []
    [(moved, offer)] = desk.rest.redirects  # straight to the offer: no conference
    assert moved == CALLER_SID
    callback_url, _ = gather_of(offer)
    thanks = await twilio_post(desk.client, callback_url, gather_result(CALLER_SID, "1"))
    assert xml(await thanks.text()).find("./Hangup") is not None
    assert [e.kind for e in await transfer_events(desk.store, jane.id)][-1] == (
        "transfer.callback_requested"
    )
    # The queue entry is kept, as for a text conversation nobody could take: it is
    # offered on the consoles (cleo, without a phone, may take it and call back).
    assert (await desk.store.get_conversation(jane.id)).state is ConversationState.QUEUED
    assert jane.id not in desk.router.claimed
    assert [(o["conversation_id"], o["rings_phone"]) for o in await desk.offers(cleo)] == [
        (jane.id, False)
    ]


async def test_declines_on_the_phone_and_in_the_console_ring_the_next_rep(
    make_desk: MakeDesk,
) -> None:
    desk = await make_desk()
    alice, bob, cleo = [await desk.rep(name) for name in ("alice", "bob", "cleo")]
    jane = await queued_phone_conversation(desk.store)
    transfer = await desk.transfers.start(CALLER_SID, jane.id)
    assert desk.rung() == [PHONES["alice"]]
    [alice_offer] = await desk.offers(alice)

    # Alice hears the brief and presses nothing: declined; bob rings.
    assert xml(await answer(desk, 0, "alice", "")).find("./Hangup") is not None
    assert desk.rung() == [PHONES["alice"], PHONES["bob"]]
    assert [e.data["status"] for e in await desk.console_events(alice, "offer.closed")] == [
        "declined"
    ]
    assert alice_offer["offer_id"] not in desk.router.offers

    # Bob declines in the console while his phone rings: it stops, and cleo's rings.
    [bob_offer] = await desk.offers(bob)
    await desk.front.decline(bob.id, bob_offer["offer_id"])
    await desk.rest.wait_until(lambda: len(desk.rest.created) == 3)  # told in the background
    assert desk.rung() == [PHONES["alice"], PHONES["bob"], PHONES["cleo"]]
    bob_sid = desk.rest.created[1].sid
    assert (bob_sid, {"Status": "completed"}) in [(sid, f) for _, sid, f in desk.rest.requests]
    # His phone's late `completed` belongs to an offer that is over: nothing changes.
    late = call_status(bob_sid, "completed", 3, PHONES["bob"])
    await twilio_post(desk.client, desk.rest.created[1].form["StatusCallback"], late)
    assert transfer.state is TransferState.RINGING and len(desk.rest.created) == 3

    # Cleo steps away while hers rings: the offer is withdrawn; nobody is left.
    await desk.front.set_presence(cleo.id, Presence.AWAY)
    # In the background: the state moves first, then its event is stored and the claim dropped.
    await until(
        lambda: transfer.state is TransferState.CALLBACK_OFFERED
        and jane.id not in desk.router.claimed
    )
    cleo_sid = desk.rest.created[2].sid
    assert (cleo_sid, {"Status": "completed"}) in [(sid, f) for _, sid, f in desk.rest.requests]
    failures = await desk.events(jane, "transfer.rep_failed")
    assert [(f.data["rep_id"], f.data["outcome"]) for f in failures] == [
        (alice.id, "declined"), (bob.id, "declined"), (cleo.id, "withdrawn"),
    ]  # fmt: skip
    assert (await desk.store.get_conversation(jane.id)).state is ConversationState.QUEUED
    assert jane.id not in desk.router.claimed and desk.router.entries_of(jane.id)


async def test_a_console_accept_while_the_phone_rings_makes_one_holder(
    make_desk: MakeDesk,
) -> None:
    desk = await make_desk()
    alice = await desk.rep("alice")
    await desk.rep("bob")
    jane = await queued_phone_conversation(desk.store)
    transfer = await desk.transfers.start(CALLER_SID, jane.id)
    [offer] = await desk.offers(alice)

    await desk.front.accept(alice.id, offer["offer_id"])  # in the console, phone ringing
    assert desk.router.held[jane.id].rep_id == alice.id
    # Her phone is how she talks to the caller: 1 joins her; she is the holder once.
    assert conference_of(await answer(desk, 0, "alice", "1")).text == transfer.conference
    assert transfer.state is TransferState.CONNECTED
    assert [e.data["rep_id"] for e in await desk.events(jane, "rep.assigned")] == [alice.id]
    assert desk.rung() == [PHONES["alice"]]  # bob's phone never rang


async def test_a_rep_who_took_it_in_the_console_keeps_it_when_their_phone_fails(
    make_desk: MakeDesk,
) -> None:
    desk = await make_desk()
    alice = await desk.rep("alice")
    await desk.rep("bob")
    jane = await queued_phone_conversation(desk.store)
    transfer = await desk.transfers.start(CALLER_SID, jane.id)
    [offer] = await desk.offers(alice)
    await desk.front.accept(alice.id, offer["offer_id"])

    await no_answer(desk, 0, "alice")
    # Nobody else may take what alice holds: the caller is offered a callback.
    assert transfer.state is TransferState.CALLBACK_OFFERED
    assert desk.rung() == [PHONES["alice"]]
    assert desk.router.held[jane.id].rep_id == alice.id
    assert (await desk.store.get_conversation(jane.id)).state is ConversationState.WITH_REP


async def test_configured_lines_ring_when_no_rep_is_left_and_close_the_call_after(
    make_desk: MakeDesk,
) -> None:
    desk = await make_desk(numbers=REPS)
    alice = await desk.rep("alice")
    jane = await queued_phone_conversation(desk.store)
    transfer = await desk.transfers.start(CALLER_SID, jane.id)
    [requested] = await desk.events(jane, "transfer.requested")
    assert requested.data["reps"] == [alice.id, *(f"phone:{n}" for n in REPS)]

    await no_answer(desk, 0, "alice")
    assert desk.rung() == [PHONES["alice"], REPS[0]]
    # The line takes it: no rep holds it, the queue entry ends, the agent stays silent.
    line = desk.rest.created[1]
    await twilio_post(desk.client, line.form["StatusCallback"],
                      call_status(line.sid, "in-progress", 1, REPS[0]))  # fmt: skip
    answer_url, _ = gather_of(line.form["Twiml"])
    await twilio_post(desk.client, answer_url, gather_result(line.sid, "1"))
    assert transfer.state is TransferState.CONNECTED
    assert jane.id not in desk.router.held and not desk.router.entries_of(jane.id)
    assert (await desk.store.get_conversation(jane.id)).state is ConversationState.WITH_REP
    [left] = await desk.events(jane, "queue.left")
    assert left.data["line"] == REPS[0]

    # The call is over: with no rep to wrap it up, the conversation closes.
    done = call_status(line.sid, "completed", 2, REPS[0])
    await twilio_post(desk.client, line.form["StatusCallback"], done)
    assert transfer.state is TransferState.COMPLETED
    assert (await desk.store.get_conversation(jane.id)).state is ConversationState.CLOSED
    assert await desk.events(jane, "call.closed")
