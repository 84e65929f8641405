"""The outreach API and the event -> message path on the preferred channel."""

from __future__ import annotations

import asyncio

import pytest

from gateway.models import ChannelKind, IdentityKind
from gateway.outreach.models import OutreachState
from tests.gateway.outreach.conftest import JANE_PHONE, OpenGateway, order_delayed


async def test_an_event_becomes_one_text_in_the_customers_conversation(
    open_gateway: OpenGateway,
) -> None:
    gw = await open_gateway()
    status, body = await gw.post(order_delayed())
    assert status == 202, body
    assert body["state"] == "queued" and body["duplicate"] is False
    done = await gw.settled(body["id"])
    assert done.state is OutreachState.SENT, done
    [sms] = gw.twilio.messages
    assert sms["To"] == JANE_PHONE
    assert "order 1001 is running late" in sms["Body"] and "Friday" in sms["Body"]
    # The same event again: the same outreach, nothing new sent.
    status, again = await gw.post(order_delayed())
    assert status == 202 and again["id"] == body["id"] and again["duplicate"] is True
    await gw.service.sweep()
    assert len(gw.twilio.messages) == 1
    # It is a message of the customer's one timeline, with its reason recorded.
    assert done.conversation_id is not None and done.customer_id is not None
    messages = await gw.store.conversation_messages(done.conversation_id)
    assert [m.text for m in messages] == [sms["Body"]]
    assert messages[0].channel is ChannelKind.SMS
    [event] = [e for e in await gw.store.events(done.conversation_id) if e.kind == "outreach.sent"]
    assert event.data["type"] == "order.delayed" and event.data["data"]["order_id"] == "1001"
    customer = await gw.store.get_customer(done.customer_id)
    assert customer.account_ref == "C-1001"
    kinds = {i.kind for i in customer.identities}
    assert kinds == {IdentityKind.PHONE, IdentityKind.EMAIL}  # the backend's contact on record
    shown = await gw.get(body["id"])
    assert shown["state"] == "sent" and shown["channel"] == "sms"


@pytest.mark.parametrize(
    ("event", "says"),
    [
        ({"type": "order.delayed", "customer": {"account": "C-1001"}, "data": {}}, "id"),
        ({**order_delayed(), "type": "order.lost"}, "unknown event type"),
        ({**order_delayed(), "data": {"order_id": "1001"}}, "new_eta"),
        ({**order_delayed(), "customer": {}}, "exactly one of"),
        ({**order_delayed(), "customer": {"phone": "555"}}, "customer.phone"),
        ({**order_delayed(), "channel": "fax"}, "channel"),
        (
            {
                **order_delayed(type="payment.failed"),
                "channel": "call",
                "data": {"amount": "$5", "why": "expired"},
            },
            "calls are not allowed",
        ),
    ],
)
async def test_bad_events_are_refused_with_422_and_a_clear_message(
    open_gateway: OpenGateway, event: dict[str, object], says: str
) -> None:
    gw = await open_gateway()
    status, body = await gw.post(event)
    assert status == 422, body
    assert body["error"] == "invalid" and says in body["message"], body
    assert gw.twilio.messages == []


async def test_without_a_valid_token_401(open_gateway: OpenGateway) -> None:
    gw = await open_gateway()
    for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token"}):
        status, body = await gw.post(order_delayed(), headers=headers)
        assert status == 401 and body["error"] == "unauthorized"
    resp = await gw.client.get("/api/v1/outreach/or_x")
    assert resp.status == 401
    resp = await gw.client.get("/api/v1/outreach/summary")
    assert resp.status == 401


async def test_the_openapi_document_has_the_outreach_paths(open_gateway: OpenGateway) -> None:
    gw = await open_gateway()
    doc = await (await gw.client.get("/api/v1/openapi.json")).json()
    assert {"/api/v1/outreach/events", "/api/v1/outreach/{id}", "/api/v1/outreach/summary"} <= set(
        doc["paths"]
    )
    assert "OutreachEvent" in doc["components"]["schemas"]


async def test_the_same_event_delivered_at_once_five_times_is_one_outreach(
    open_gateway: OpenGateway,
) -> None:
    gw = await open_gateway()
    answers = await asyncio.gather(*(gw.post(order_delayed("evt-race")) for _ in range(5)))
    assert {status for status, _ in answers} == {202}
    assert len({body["id"] for _, body in answers}) == 1
    assert sum(not body["duplicate"] for _, body in answers) == 1
    done = await gw.settled(answers[0][1]["id"])
    assert done.state is OutreachState.SENT
    await gw.service.sweep()
    assert len(gw.twilio.messages) == 1
