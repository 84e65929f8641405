"""The desk's conversation search: the store's full-text engine, closed conversations
included, filters, and who finds what."""

from __future__ import annotations

from typing import Any

from gateway.models import ChannelKind, Identity, IdentityKind
from gateway.routing.models import Role
from tests.gateway.routing.desk import Desk


async def _find(desk: Desk, **params: str) -> tuple[int, Any]:
    resp = await desk.client.get("/console/api/conversations", params=params)
    return resp.status, await resp.json()


def _ids(body: Any) -> list[int]:
    return [c["id"] for c in body["conversations"]]


async def test_search_finds_words_closed_conversations_and_filters(desk: Desk) -> None:
    ann = await desk.rep("ann")
    refund = await desk.say("v1", "My refund for the blue kettle never arrived")
    await desk.say("v2", "Do you deliver to Norway?")
    sms = Identity(kind=IdentityKind.PHONE, value="+15550002001")
    texted = await desk.say("s1", "Where is my refund please", ChannelKind.SMS, sms)
    handed = await desk.handover("v3")
    offer_id, _ = await desk.offer_for(ann.id)
    await desk.service.accept(ann.id, offer_id)
    await desk.service.reply(ann.id, handed.id, "Your parcel left the warehouse today")
    await desk.service.close(ann.id, handed.id, "resolved")
    await desk.rep("lead", role=Role.SUPERVISOR, available=False)
    await desk.login("lead")

    status, body = await _find(desk, q="refund")
    assert status == 200
    assert _ids(body) == [texted.id, refund.id]  # newest first
    assert _ids((await _find(desk, q="refund kettle"))[1]) == [refund.id]  # every word
    assert _ids((await _find(desk, q="Refund", channel="sms"))[1]) == [texted.id]
    # A rep's words in a closed conversation are found too.
    (hit,) = (await _find(desk, q="warehouse"))[1]["conversations"]
    assert hit["id"] == handed.id and hit["state"] == "closed" and hit["closed_at"]
    assert _ids((await _find(desk, state="closed"))[1]) == [handed.id]
    assert _ids((await _find(desk, customer="+15550002001"))[1]) == [texted.id]
    assert (await _find(desk, q='"; DROP TABLE messages; --'))[1]["conversations"] == []
    assert (await _find(desk, q="NEAR(refund*)"))[0] == 200  # no FTS syntax from users
    assert (await _find(desk, channel="fax"))[0] == 400
    assert (await _find(desk, since="not a date"))[0] == 400

    # A rep finds the conversations they took, not everyone's.
    await desk.login("ann")
    assert _ids((await _find(desk))[1]) == [handed.id]
    assert _ids((await _find(desk, q="refund"))[1]) == []


async def test_a_closed_conversation_is_reopened_into_its_queue(desk: Desk) -> None:
    ann = await desk.rep("ann")
    conv = await desk.handover("v1")
    offer_id, _ = await desk.offer_for(ann.id)
    await desk.service.accept(ann.id, offer_id)
    await desk.service.close(ann.id, conv.id, "resolved")
    await desk.rep("bob", available=False)
    path = f"/console/api/conversations/{conv.id}/reopen"
    _, csrf = await desk.login("bob")
    assert (await desk.post(path, {}, csrf)).status == 404  # never worked it
    _, csrf = await desk.login("ann")
    assert (await desk.post(path, {}, csrf=None)).status == 403  # CSRF, as every write
    done = await desk.post(path, {}, csrf)
    assert done.status == 200, await done.text()
    assert (await done.json())["state"] == "queued"
    again = await desk.post(path, {}, csrf)
    assert again.status == 409
    offer_id, offered = await desk.offer_for(ann.id)  # offered like any handover
    assert offered == conv.id
    taken = await desk.service.accept(ann.id, offer_id)
    assert taken.state.value == "with_rep"
    kinds = [e.kind for e in await desk.store.events(conv.id)]
    assert kinds.count("rep.reopened") == 1


async def test_no_reopening_while_the_customer_has_an_open_conversation(desk: Desk) -> None:
    ann = await desk.rep("ann")
    conv = await desk.handover("v1")
    offer_id, _ = await desk.offer_for(ann.id)
    await desk.service.accept(ann.id, offer_id)
    await desk.service.close(ann.id, conv.id, "resolved")
    newer = await desk.say("v1", "one more thing")  # a new conversation
    assert newer.id != conv.id
    _, csrf = await desk.login("ann")
    refused = await desk.post(f"/console/api/conversations/{conv.id}/reopen", {}, csrf)
    assert refused.status == 409
    assert f"#{newer.id}" in (await refused.json())["message"]


async def test_a_rep_takes_from_the_waiting_list_and_a_lead_assigns(desk: Desk) -> None:
    ann = await desk.rep("ann", "general", available=False)  # nothing is offered to her
    await desk.rep("tom", "technical", available=False)
    waiting = await desk.handover("v1", "general")
    other = await desk.handover("v2", "technical")
    entries = {e.conversation_id: e.id for e in desk.service.router.waiting.values()}
    _, csrf = await desk.login("ann")
    far = await desk.post(f"/console/api/waiting/{entries[other.id]}/take", {}, csrf)
    assert far.status == 404  # not a queue she serves
    took = await desk.post(f"/console/api/waiting/{entries[waiting.id]}/take", {}, csrf)
    assert took.status == 200, await took.text()
    assert (await took.json())["state"] == "with_rep"
    assert desk.service.router.held[waiting.id].rep_id == ann.id
    gone = await desk.post(f"/console/api/waiting/{entries[waiting.id]}/take", {}, csrf)
    assert gone.status == 404  # no longer waiting

    # A lead gives the technical one to Tom, although it is offered to Bea meanwhile.
    bea = await desk.rep("bea", "technical")
    _, offered = await desk.offer_for(bea.id)
    assert offered == other.id
    tom = next(r for r in desk.service.router.reps.values() if r.username == "tom")
    assert (await desk.post(f"/console/api/waiting/{entries[other.id]}/assign",
                            {"rep_id": tom.id}, csrf)).status == 403  # ann is no lead  # fmt: skip
    await desk.rep("lead", role=Role.SUPERVISOR, available=False)
    _, csrf = await desk.login("lead")
    assigned = await desk.post(f"/console/api/waiting/{entries[other.id]}/assign",
                               {"rep_id": tom.id}, csrf)  # fmt: skip
    assert assigned.status == 200, await assigned.text()
    assert desk.service.router.held[other.id].rep_id == tom.id
    assert desk.offers_for(bea.id) == []  # her offer was withdrawn
