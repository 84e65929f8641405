"""The answer limits over real SMTP: per sender, per sender domain and in all, kept in
the store across a restart, and every held-back mail stored and reported."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from gateway.models import Identity, IdentityKind
from tests.channels.email.conftest import OpenMailer
from tests.support.brains import EchoBrain


def email(address: str) -> Identity:
    return Identity(kind=IdentityKind.EMAIL, value=address)


async def held_back(client: TestClient[Any, Any], limit: str) -> float:
    text = await (await client.get("/metrics")).text()
    prefix = f'gateway_email_answers_held_back_total{{limit="{limit}"}} '
    return sum(float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix))


async def test_a_responder_answering_from_new_addresses_is_stopped_by_the_domain_cap(
    open_mailer: OpenMailer,
) -> None:
    mailer = await open_mailer(brain=EchoBrain(), email_replies_per_domain_per_hour=3)
    relay = mailer.relay
    await mailer.send(mailer.compose("r0@loop.example", "hello"))
    for i in range(1, 8):  # answers every mail, each time from a new address
        await mailer.send(
            mailer.compose(f"r{i}@loop.example", "Thanks for your mail!", reply_to=relay.mails[-1])
        )
    assert len(relay.mails) == 3
    assert await held_back(mailer.client, "domain") == 5
    last = await mailer.store.find_customer(email("r7@loop.example"))
    assert last is not None
    history = await mailer.store.history(last.id)
    assert [m.text for m in history] == ["Thanks for your mail!"]  # stored, not answered
    events = await mailer.store.events(history[0].conversation_id)
    limited = [e for e in events if e.kind == "email.rate_limited"]
    assert [(e.data["limit"], e.data["per_hour"]) for e in limited] == [("domain", 3)]
    # Another domain is not held back by this one.
    await mailer.send(mailer.compose("jane@example.org", "Where is my order?"))
    assert len(relay.mails) == 4


async def test_the_total_cap_holds_every_sender(open_mailer: OpenMailer) -> None:
    mailer = await open_mailer(brain=EchoBrain(), email_replies_total_per_hour=2)
    for domain in ("a.example", "b.example", "c.example", "d.example"):
        await mailer.send(mailer.compose(f"someone@{domain}", "hello"))
    assert len(mailer.relay.mails) == 2
    assert await held_back(mailer.client, "total") == 2


async def test_the_limits_survive_a_restart(open_mailer: OpenMailer) -> None:
    first = await open_mailer(brain=EchoBrain(), email_replies_per_hour=2)
    for n in range(2):
        await first.send(first.compose("loop@example.net", f"mail {n}"))
    assert len(first.relay.mails) == 2
    await first.client.close()  # the gateway stops; its data directory stays
    again = await open_mailer(brain=EchoBrain(), email_replies_per_hour=2)
    await again.send(again.compose("loop@example.net", "mail 2"))
    assert len(again.relay.mails) == 2  # still held back after the restart
    assert await held_back(again.client, "sender") == 1
    customer = await again.store.find_customer(email("loop@example.net"))
    assert customer is not None
    assert len(await again.store.history(customer.id)) == 5  # 3 mails, 2 answers
