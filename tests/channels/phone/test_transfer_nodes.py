"""A call's warm transfer on one node while routing leads on another: two gateway apps
in this process on one PostgreSQL database and one Redis bus. Node A leads routing;
node B holds the call and its transfer, so every question it asks routing (whom to
ring, may this rep take it, the call is over) and routing's news for it (a rep
declined in the console) cross the bus.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from channels.phone.transfer.state import TransferState
from gateway.app import BUS, STORE
from gateway.models import ConversationState
from gateway.routing.models import Presence, Rep, RepDraft
from gateway.routing.passwords import hash_password
from gateway.routing.service import RoutingService
from gateway.routing.state import ROUTING
from tests.channels.phone.calls import FakeTwilioRest, eventually
from tests.channels.phone.transfers import (
    CALLER_SID,
    call_status,
    conference_of,
    gather_of,
    gather_result,
    queued_phone_conversation,
    transfer_app,
    transfers_of,
    twilio_post,
)

SECRET = "transfer-nodes-test-secret-0123456789"
PHONES = {"alice": "+15550100001", "bob": "+15550100002", "cleo": "+15550100003"}


@dataclass
class Nodes:
    a: web.Application  # leads routing
    b: web.Application  # holds the call
    client_b: TestClient[Any, Any]
    rest: FakeTwilioRest

    @property
    def service(self) -> RoutingService:
        service = self.a[ROUTING].service
        assert service is not None
        return service


@pytest.fixture
async def nodes(
    pg_url: str, redis_url: str, tmp_path: Path, aiohttp_client: AiohttpClient,
    twilio_rest: FakeTwilioRest,
) -> AsyncIterator[Nodes]:  # fmt: skip
    api = await twilio_rest.start()
    shared = {"database_url": pg_url, "redis_url": redis_url, "secret_key": SECRET,
              "redis_prefix": f"gwtest-{uuid.uuid4().hex[:8]}"}  # fmt: skip
    a = transfer_app(tmp_path / "a", api, numbers=(), node_id="node-a", **shared)
    await aiohttp_client(a)
    front_a = a[ROUTING].front
    assert front_a is not None

    async def leading() -> bool:
        return front_a.leading

    await eventually(leading)
    b = transfer_app(tmp_path / "b", api, numbers=(), node_id="node-b", **shared)
    client_b = await aiohttp_client(b)
    front_b = b[ROUTING].front
    assert front_b is not None and not front_b.leading
    twilio_rest.live.add(CALLER_SID)
    yield Nodes(a, b, client_b, twilio_rest)


async def add_rep(service: RoutingService, name: str) -> Rep:
    draft = RepDraft(username=name, display_name=name.title(), skills=("billing",),
                     password_hash=hash_password("pw"), phone=PHONES[name])  # fmt: skip
    return await service.set_presence((await service.add_rep(draft)).id, Presence.AVAILABLE)


async def test_a_transfer_on_one_node_rings_the_reps_routing_offers_it_to_on_another(
    nodes: Nodes,
) -> None:
    service = nodes.service
    alice, bob, cleo = [await add_rep(service, name) for name in ("alice", "bob", "cleo")]
    jane = await queued_phone_conversation(nodes.b[STORE])
    transfer = await transfers_of(nodes.b).start(CALLER_SID, jane.id)
    assert transfer.id.startswith(f"{nodes.b[BUS].node_id}.")
    assert [c.form["To"] for c in nodes.rest.created] == [PHONES["alice"]]
    router = service.router
    assert jane.id in router.claimed and router.phone_offers

    # Alice does not answer (Twilio calls node B): bob's phone rings.
    alice_call = nodes.rest.created[0]
    no_answer = call_status(alice_call.sid, "no-answer", 1, PHONES["alice"])
    await twilio_post(nodes.client_b, alice_call.form["StatusCallback"], no_answer)
    assert [c.form["To"] for c in nodes.rest.created] == [PHONES["alice"], PHONES["bob"]]

    # Bob declines in the console (on the leader): node B hears of it and rings cleo.
    [offer] = [o for o in router.offers.values() if o.rep_id == bob.id]
    await service.decline(bob.id, offer.id)
    await nodes.rest.wait_until(lambda: len(nodes.rest.created) == 3)
    assert nodes.rest.created[2].form["To"] == PHONES["cleo"]

    # Cleo presses 1: the leader makes her the holder.
    cleo_call = nodes.rest.created[2]
    answer_url, _ = gather_of(cleo_call.form["Twiml"])
    joined = await twilio_post(nodes.client_b, answer_url, gather_result(cleo_call.sid, "1"))
    assert conference_of(await joined.text()).text == transfer.conference
    assert transfer.state is TransferState.CONNECTED
    assert router.held[jane.id].rep_id == cleo.id and jane.id not in router.claimed
    store = nodes.a[STORE]
    assert (await store.get_conversation(jane.id)).state is ConversationState.WITH_REP

    # The call ends: node B tells the leader, and cleo wraps it up with her capacity free.
    done = call_status(cleo_call.sid, "completed", 3, PHONES["cleo"])
    await twilio_post(nodes.client_b, cleo_call.form["StatusCallback"], done)
    assert transfer.state is TransferState.COMPLETED

    async def wrapped_up() -> bool:
        return jane.id in router.wrap_up

    await eventually(wrapped_up)
    assert [e.kind for e in await store.events(jane.id) if e.kind == "rep.wrap_up"]
    failures = [(e.data["rep_id"], e.data["outcome"]) for e in await store.events(jane.id)
                if e.kind == "transfer.rep_failed"]  # fmt: skip
    assert failures == [(alice.id, "no-answer"), (bob.id, "declined")]
