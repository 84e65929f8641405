"""Queues and offers: skills, capacity, priority, timeouts, declines, restarts."""

from __future__ import annotations

from gateway.models import ConversationState
from gateway.routing.models import Presence
from tests.gateway.routing.conftest import OpenDesk
from tests.gateway.routing.desk import Desk


async def test_handover_is_offered_to_a_rep_with_the_skill_and_accepting_silences_the_agent(
    desk: Desk,
) -> None:
    tech = await desk.rep("tess", "technical")
    bill = await desk.rep("bill", "billing")
    conv = await desk.handover("v1", "billing")
    assert conv.state is ConversationState.QUEUED and conv.queue == "billing"
    offer_id, conv_id = await desk.offer_for(bill.id)
    assert conv_id == conv.id
    assert desk.offers_for(tech.id) == []
    assert not desk.service.can_see(tech.id, conv.id)

    taken = await desk.service.accept(bill.id, offer_id)
    assert taken.state is ConversationState.WITH_REP
    seen = len(desk.brain.seen)
    await desk.say("v1", "are you there?")
    assert len(desk.brain.seen) == seen, "the agent answered a conversation a rep holds"
    texts = await desk.texts(conv.id)
    assert texts[-2:] == ["You're now talking with Bill.", "are you there?"]
    kinds = [e.kind for e in await desk.store.events(conv.id)]
    assert "queue.entered" in kinds and "rep.assigned" in kinds


async def test_capacity_limits_offers_until_a_conversation_is_closed(desk: Desk) -> None:
    rep = await desk.rep("cara", max_text=1)
    first = await desk.handover("v1")
    second = await desk.handover("v2")
    offer_id, conv_id = await desk.offer_for(rep.id)
    assert conv_id == first.id
    await desk.service.accept(rep.id, offer_id)
    assert desk.offers_for(rep.id) == [], "a rep at capacity got a second offer"
    await desk.service.close(rep.id, first.id, "resolved")
    offer_id, conv_id = await desk.offer_for(rep.id)
    assert conv_id == second.id


async def test_calls_and_texts_have_separate_capacity(desk: Desk) -> None:
    rep = await desk.rep("cal", max_text=0, max_calls=1)
    await desk.handover("v1")
    assert desk.offers_for(rep.id) == [], "a rep with no text capacity was offered a chat"


async def test_angrier_customers_are_offered_first(desk: Desk) -> None:
    rep = await desk.rep("pia", available=False, max_text=1)
    calm = await desk.handover("v1", "general", "positive")
    angry = await desk.handover("v2", "general", "angry")
    assert calm.id < angry.id
    await desk.service.set_presence(rep.id, Presence.AVAILABLE)
    _, conv_id = await desk.offer_for(rep.id)
    assert conv_id == angry.id


async def test_the_least_recently_busy_rep_is_offered_first(desk: Desk) -> None:
    ann = await desk.rep("ann")
    ben = await desk.rep("ben")
    first = await desk.handover("v1")
    offer_id, _ = await desk.offer_for(ann.id)  # neither was busy yet: lowest id
    await desk.service.accept(ann.id, offer_id)
    second = await desk.handover("v2")
    _, conv_id = await desk.offer_for(ben.id)
    assert conv_id == second.id and first.id != second.id


async def test_an_offer_not_accepted_in_time_goes_to_the_next_rep(open_desk: OpenDesk) -> None:
    desk = await open_desk(offer_timeout_s=0.2)
    ann = await desk.rep("ann")
    ben = await desk.rep("ben")
    conv = await desk.handover("v1")
    first_offer, _ = await desk.offer_for(ann.id)
    _, conv_id = await desk.offer_for(ben.id)
    assert conv_id == conv.id
    assert desk.offers_for(ann.id) == [] or desk.offers_for(ann.id)[0][0] != first_offer


async def test_a_declined_offer_goes_to_the_next_rep(desk: Desk) -> None:
    ann = await desk.rep("ann")
    ben = await desk.rep("ben")
    conv = await desk.handover("v1")
    offer_id, _ = await desk.offer_for(ann.id)
    await desk.service.decline(ann.id, offer_id)
    _, conv_id = await desk.offer_for(ben.id)
    assert conv_id == conv.id
    assert desk.offers_for(ann.id) == []


async def test_going_away_withdraws_offers(desk: Desk) -> None:
    ann = await desk.rep("ann")
    await desk.handover("v1")
    await desk.offer_for(ann.id)
    await desk.service.set_presence(ann.id, Presence.AWAY)
    assert desk.offers_for(ann.id) == []


async def test_queued_work_and_pending_offers_survive_a_restart(open_desk: OpenDesk) -> None:
    desk = await open_desk()
    ann = await desk.rep("ann", max_text=1)
    first = await desk.handover("v1")
    second = await desk.handover("v2")
    offer_id, conv_id = await desk.offer_for(ann.id)
    assert conv_id == first.id
    await desk.client.close()  # the app shuts down: store closed, timers gone

    again = await open_desk()
    router = again.service.router
    assert {e.conversation_id for e in router.waiting.values()} == {first.id, second.id}
    assert again.offers_for(ann.id) == [(offer_id, first.id)], "pending offer not re-issued"
    taken = await again.service.accept(ann.id, offer_id)
    assert taken.state is ConversationState.WITH_REP
    await again.service.close(ann.id, first.id, "resolved")
    _, conv_id = await again.offer_for(ann.id)
    assert conv_id == second.id


async def test_nobody_available_offers_a_callback_and_records_the_choice(desk: Desk) -> None:
    from gateway.models import ChannelKind, Identity, IdentityKind

    caller = Identity(kind=IdentityKind.PHONE, value="+15551234567")
    conv = await desk.say("x", "human billing", channel=ChannelKind.SMS, identity=caller)
    texts = await desk.texts(conv.id)
    assert "Nobody from our team is free right now" in texts[-1]
    assert "CALLBACK" in texts[-1]
    await desk.say("x", "Callback", channel=ChannelKind.SMS, identity=caller)
    events = await desk.store.events(conv.id)
    assert [e.data["choice"] for e in events if e.kind == "queue.choice"] == ["callback"]
    assert (await desk.store.get_conversation(conv.id)).brief is not None
    rep = await desk.rep("bill", "billing")
    _, conv_id = await desk.offer_for(rep.id)  # still queued: offered once someone is in
    assert conv_id == conv.id


async def test_out_of_hours_the_customer_is_told(open_desk: OpenDesk) -> None:
    # Open one minute a week, and never now (the minute after now's weekday is closed).
    desk = await open_desk(business_hours={"mon": "00:00-00:01"}, business_timezone="UTC")
    await desk.rep("ann")
    conv = await desk.handover("v1")
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    if now.weekday() == 0 and now.hour == 0 and now.minute == 0:
        return  # the one open minute
    assert "We're closed right now" in (await desk.texts(conv.id))[-1]


async def test_the_wait_estimate_comes_from_recent_handle_times(desk: Desk) -> None:
    rep = await desk.rep("ann", max_text=1)
    first = await desk.handover("v1")
    assert "as soon as possible" in (await desk.texts(first.id))[-1]  # no data yet
    offer_id, _ = await desk.offer_for(rep.id)
    await desk.service.accept(rep.id, offer_id)
    await desk.service.close(rep.id, first.id, "resolved")
    second = await desk.handover("v2")
    assert "in about 1 minute" in (await desk.texts(second.id))[-1]


async def test_when_every_rep_passed_the_conversation_is_offered_again(
    open_desk: OpenDesk,
) -> None:
    desk = await open_desk(offer_timeout_s=0.2)
    ann = await desk.rep("ann")
    conv = await desk.handover("v1")
    offer_id, _ = await desk.offer_for(ann.id)
    await desk.service.decline(ann.id, offer_id)
    again, conv_id = await desk.offer_for(ann.id)  # a new round after one accept timeout
    assert conv_id == conv.id and again != offer_id
