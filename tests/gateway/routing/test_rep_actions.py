"""What a rep does with a conversation: reply, note, transfer, hand back, close, rating."""

from __future__ import annotations

import re

import pytest

from gateway.errors import ConflictError
from gateway.models import AuthorKind, ConversationState, Direction
from tests.channels.chat import Chat
from tests.gateway.routing.desk import Desk


async def _held(desk: Desk, visitor: str = "v1", skills: str = "general") -> tuple[int, int]:
    rep = await desk.rep(f"rep{visitor}", skills)
    conv = await desk.handover(visitor)
    offer_id, _ = await desk.offer_for(rep.id)
    await desk.service.accept(rep.id, offer_id)
    return rep.id, conv.id


async def test_a_rep_reply_reaches_the_chat_widget_and_notes_do_not(desk: Desk) -> None:
    rep = await desk.rep("ann")
    chat = await Chat.open(desk.client)
    await chat.send({"type": "hello"})
    welcome = await chat.expect("welcome")
    await chat.send({"type": "message", "text": "human", "client_id": "c1"})
    await chat.until(lambda f: f.get("text") == "connecting you")
    offer_id, conv_id = await desk.offer_for(rep.id)
    await desk.service.accept(rep.id, offer_id)
    await chat.until(lambda f: f.get("text") == "You're now talking with Ann.")
    note = await desk.service.note(rep.id, conv_id, "customer sounds upset")
    assert note.direction is Direction.INTERNAL
    sent = await desk.service.reply(rep.id, conv_id, "Hi, I'm Ann. Let me look.")
    assert sent.author is AuthorKind.REP
    frame = await chat.until(lambda f: f.get("type") == "message" and f.get("author") == "rep")
    assert frame["text"] == "Hi, I'm Ann. Let me look."
    assert all("upset" not in str(f) for f in chat.frames)
    view = await desk.views.conversation(rep.id, conv_id)
    assert "customer sounds upset" in [m["text"] for m in view["messages"]]
    assert welcome["type"] == "welcome"

    await desk.service.close(rep.id, conv_id, "resolved")
    control = await chat.until(lambda f: f.get("type") == "rating")
    assert control["scale"] == 5
    path = control["url"].removeprefix(str(desk.client.make_url("")).rstrip("/"))
    path = path[path.index("/rate/") :]
    assert (await desk.client.post(path, data={"score": "2"})).status == 200
    events = await desk.store.events(conv_id)
    assert [e.data for e in events if e.kind == "rating"] == [{"score": 2, "channel": "webchat"}]


async def test_only_the_holder_may_reply(desk: Desk) -> None:
    _, conv_id = await _held(desk)
    other = await desk.rep("eve")
    with pytest.raises(ConflictError):
        await desk.service.reply(other.id, conv_id, "hello")


async def test_hand_back_lets_the_agent_answer_again(desk: Desk) -> None:
    rep_id, conv_id = await _held(desk)
    conv = await desk.service.hand_back(rep_id, conv_id)
    assert conv.state is ConversationState.BOT
    await desk.say("v1", "still there?")
    assert (await desk.texts(conv_id))[-1] == "echo: still there?"


async def test_close_records_the_disposition_and_the_rating_link_records_a_rating(
    desk: Desk,
) -> None:
    rep_id, conv_id = await _held(desk)
    conv = await desk.service.close(rep_id, conv_id, "resolved", "refund issued")
    assert conv.state is ConversationState.CLOSED
    prompt = (await desk.texts(conv_id))[-1]
    match = re.search(r"/rate/(\S+)$", prompt)
    assert match, prompt
    path = f"/rate/{match.group(1)}"
    form = await desk.client.get(path)
    assert form.status == 200 and "How did we do?" in await form.text()
    bad = await desk.client.post(path, data={"score": "9"})
    assert bad.status == 400
    done = await desk.client.post(path, data={"score": "4"})
    assert done.status == 200
    events = await desk.store.events(conv_id)
    assert [e.data["score"] for e in events if e.kind == "rating"] == [4]
    assert [e.data["disposition"] for e in events if e.kind == "rep.closed"] == ["resolved"]
    forged = await desk.client.post(path[:-3] + "xyz", data={"score": "5"})
    assert forged.status == 404


async def test_warm_transfer_to_a_rep_changes_hands_when_accepted(desk: Desk) -> None:
    first, conv_id = await _held(desk)
    second = await desk.rep("sam")
    await desk.service.transfer(first, conv_id, to_rep=second.id, note="wants a refund")
    offer_id, offered = await desk.offer_for(second.id)
    assert offered == conv_id
    # Until the second rep accepts, the first still holds the conversation.
    await desk.service.reply(first, conv_id, "one moment, bringing in a colleague")
    await desk.service.accept(second.id, offer_id)
    await desk.service.reply(second.id, conv_id, "hi, Sam here")
    with pytest.raises(ConflictError):
        await desk.service.reply(first, conv_id, "still me?")
    events = await desk.store.events(conv_id)
    assert [e.data["note"] for e in events if e.kind == "rep.assigned"][-1] == "wants a refund"


async def test_a_declined_transfer_leaves_the_conversation_with_the_first_rep(
    desk: Desk,
) -> None:
    first, conv_id = await _held(desk)
    second = await desk.rep("sam")
    await desk.service.transfer(first, conv_id, to_rep=second.id, note="?")
    offer_id, _ = await desk.offer_for(second.id)
    await desk.service.decline(second.id, offer_id)
    await desk.service.reply(first, conv_id, "I'm still here")
    conv = await desk.store.get_conversation(conv_id)
    assert conv.state is ConversationState.WITH_REP


async def test_transfer_to_a_queue_goes_to_a_rep_with_that_skill(desk: Desk) -> None:
    first, conv_id = await _held(desk)
    tech = await desk.rep("tess", "technical")
    await desk.service.transfer(first, conv_id, queue="technical", note="router issue")
    offer_id, offered = await desk.offer_for(tech.id)
    await desk.service.accept(tech.id, offer_id)
    conv = await desk.store.get_conversation(conv_id)
    assert offered == conv_id and conv.queue == "technical"


async def _outbound_count(desk: Desk, channel: str = "webchat") -> float:
    from prometheus_client.parser import text_string_to_metric_families

    body = await (await desk.client.get("/metrics")).text()
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == "gateway_messages_total" and sample.labels == {
                "channel": channel,
                "direction": "outbound",
            }:
                return sample.value
    return 0.0


async def test_metrics_count_the_reps_replies_as_outbound_messages(desk: Desk) -> None:
    rep_id, conv_id = await _held(desk)
    before = await _outbound_count(desk)
    stored_before = len(await desk.texts(conv_id))
    await desk.service.note(rep_id, conv_id, "private: not a message to anyone")
    await desk.service.reply(rep_id, conv_id, "Hello, I can help with that.")
    await desk.service.reply(rep_id, conv_id, "Done: anything else?")
    stored = [
        m
        for m in (await desk.store.conversation_messages(conv_id))[stored_before:]
        if m.direction is Direction.OUTBOUND
    ]
    assert [m.text for m in stored] == ["Hello, I can help with that.", "Done: anything else?"]
    assert await _outbound_count(desk) == before + len(stored)


async def test_a_reps_messages_carry_their_first_name_live_and_in_history(desk: Desk) -> None:
    from gateway.routing.models import Presence, RepDraft
    from tests.gateway.routing.desk import password_hash

    draft = RepDraft(username="annlee", display_name="Ann Marie Lee",
                     password_hash=password_hash(), skills=("general",))  # fmt: skip
    rep = await desk.service.set_presence((await desk.service.add_rep(draft)).id,
                                          Presence.AVAILABLE)  # fmt: skip
    chat = await Chat.open(desk.client)
    await chat.send({"type": "hello"})
    welcome = await chat.expect("welcome")
    await chat.send({"type": "message", "text": "human", "client_id": "c1"})
    offer_id, conv_id = await desk.offer_for(rep.id)
    await desk.service.accept(rep.id, offer_id)
    await desk.service.reply(rep.id, conv_id, "Hi, I'm Ann.")
    frame = await chat.until(lambda f: f.get("type") == "message" and f.get("author") == "rep")
    assert (frame["text"], frame["author_name"]) == ("Hi, I'm Ann.", "Ann")
    agent = next(f for f in chat.frames if f.get("author") == "agent")
    assert agent["author_name"] is None

    again = await Chat.open(desk.client)
    _, history = await again.hello(token=welcome["visitor_token"])
    assert [(m["author_name"], m["text"]) for m in history if m["author"] == "rep"] == [
        ("Ann", "Hi, I'm Ann.")
    ]
    view = await desk.views.conversation(rep.id, conv_id)
    assert [m["author_name"] for m in view["messages"] if m["author"] == "rep"] == ["Ann"]
