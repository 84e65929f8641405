"""A call's warm transfer as the rep console sees it while it rings: each step of the
transfer, and what the caller says on hold, reach the consoles of the queue's reps."""

from __future__ import annotations

from pathlib import Path

from pytest_aiohttp import AiohttpClient

from channels.phone.transfer.state import TransferState
from gateway.app import DISPATCHER, STORE
from gateway.models import ChannelKind, Identity, IdentityKind, InboundMessage, Verification
from gateway.routing.models import Presence, RepDraft
from gateway.routing.passwords import hash_password
from gateway.routing.state import ROUTING
from tests.channels.phone.calls import FakeTwilioRest
from tests.channels.phone.transfers import (
    CALLER_SID,
    JANE,
    call_status,
    queued_phone_conversation,
    transfer_app,
    transfers_of,
    twilio_post,
)


async def test_the_consoles_follow_a_ringing_transfer_and_the_callers_words(
    tmp_path: Path, aiohttp_client: AiohttpClient, twilio_rest: FakeTwilioRest
) -> None:
    api = await twilio_rest.start()
    app = transfer_app(tmp_path, api)
    client = await aiohttp_client(app)
    twilio_rest.live.add(CALLER_SID)
    service, routing = app[ROUTING].service, app[ROUTING].store
    assert service is not None and routing is not None
    store = app[STORE]
    draft = RepDraft(username="bea", display_name="Bea", password_hash=hash_password("pw"),
                     skills=("billing",))  # fmt: skip
    bea = await service.set_presence((await service.add_rep(draft)).id, Presence.AWAY)
    draft = draft.model_copy(update={"username": "tom", "skills": ("technical",)})
    tom = await service.add_rep(draft)

    conversation = await queued_phone_conversation(store)
    customer = await store.get_customer(conversation.customer_id)
    await service.intake.handover(customer, conversation)  # waits in the billing queue
    transfer = await transfers_of(app).start(CALLER_SID, conversation.id)
    assert transfer.state is TransferState.RINGING
    [rep_call] = twilio_rest.created
    status_url = rep_call.form["StatusCallback"]
    got = await twilio_post(client, status_url, call_status(rep_call.sid, "in-progress", 1))
    assert got.status == 204

    # The caller is still heard while it rings (their words are the live transcript).
    caller = Identity(kind=IdentityKind.PHONE, value=JANE, verified=Verification.CALLER_ID)
    await app[DISPATCHER].handle(
        InboundMessage(channel=ChannelKind.PHONE, identity=caller, text="are you there",
                       confidence=0.71)
    )  # fmt: skip
    await app[DISPATCHER].drain()

    seen = await routing.console_events(bea.id, service.queues_of(bea.id), 0, 200)
    steps = [e.data for e in seen if e.kind == "call.transfer"]
    assert [s["step"] for s in steps] == ["requested", "ringing", "briefing"]
    assert all(s["conversation_id"] == conversation.id for s in steps)
    assert steps[1]["rep_name"] == "billing line 1"
    [said] = [e.data["message"] for e in seen if e.kind == "message"]
    assert (said["text"], said["confidence"], said["channel"]) == ("are you there", 0.71, "phone")
    theirs = await routing.console_events(tom.id, service.queues_of(tom.id), 0, 200)
    assert not [e for e in theirs if e.kind in {"call.transfer", "message"}]
