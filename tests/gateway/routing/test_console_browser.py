"""The rep console in a real browser (Debian's chromium, driven by Playwright), against
the real app with the embedded agent: a customer is handed over on chat, SMS or email,
a rep logs in, accepts, reads the brief and the history, and replies on the customer's
channel. Twilio and the mail relay are local servers speaking their protocols."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, WebSocket, expect

from gateway.app import create_app
from gateway.routing.state import ROUTING
from gateway.settings import load_settings
from tests.channels.sms.texting import OUR_NUMBER, Texter, sms_settings
from tests.gateway.routing.console_ui import Customer, RepConsole
from tests.gateway.routing.desk import Desk, HandoverBrain, eventually
from tests.support.browser import chromium, needs_chromium
from tests.support.mail import SUPPORT, CatchingRelay, Mailer
from tests.support.twilio_rest import FakeTwilioRest

pytestmark = [pytest.mark.browser, needs_chromium]

MakeClient = Callable[..., Awaitable[TestClient[Any, Any]]]
PERSON = "I want to talk to a real person"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


async def open_desk(client_of: MakeClient, app: web.Application) -> tuple[Desk, str]:
    """The app with its real embedded agent; the desk adds reps; the base URL."""
    client = await client_of(app)
    return Desk(client, HandoverBrain()), str(client.make_url("")).rstrip("/")


def plain_app(data_dir: Path, **extra: Any) -> web.Application:
    return create_app(load_settings(data_dir=data_dir, offer_timeout_s=60.0, **extra))


async def test_a_chat_customer_is_handed_over_and_answered_from_the_console(
    tmp_path: Path, aiohttp_client: MakeClient, browser: Browser
) -> None:
    desk, base = await open_desk(aiohttp_client, plain_app(tmp_path))
    await desk.rep("ann", "general,billing,technical")
    rep = await RepConsole.logged_in(browser, base, "ann")
    await expect(rep.page.get_by_text("No offers right now.")).to_be_visible()

    customer = await Customer.open(browser, base)
    await customer.say("Do you ship internationally?")
    await customer.say(PERSON)
    await customer.sees("A member of our team will be with you")

    # The offer arrives live; Enter on its Accept button takes it.
    await expect(rep.offers).to_have_count(1)
    await rep.accept_first_offer_with_the_keyboard()
    await customer.sees("You're now talking with Ann.")
    page = rep.page
    brief = rep.section("Handoff brief")
    await expect(brief).to_contain_text("Needs")
    await expect(brief).to_contain_text("Next step")
    await expect(brief).to_contain_text("Confidence")
    await expect(brief).to_contain_text("Sentiment")
    await expect(rep.timeline.get_by_text("Do you ship internationally?")).to_be_visible()
    await expect(rep.timeline).to_contain_text(PERSON)
    await expect(rep.timeline.locator("li.author-agent").first).to_contain_text("Chat")
    await expect(page.get_by_label("Reply to the customer")).to_be_visible()
    assert await page.evaluate("document.documentElement.scrollWidth") <= 1366

    # Typing shows both ways.
    await customer.page.get_by_label("Your message").fill("hmm")
    await expect(page.locator("#typing")).to_have_text("The customer is typing…")
    await page.get_by_label("Reply to the customer").fill("Hi")
    await expect(customer.page.get_by_text("Support is typing…")).to_be_visible()

    await rep.note("VIP: asked twice about shipping")
    note = rep.timeline.locator("li.internal")
    await expect(note).to_contain_text("Private note")
    await rep.reply("Hi, this is Ann. Yes, we ship to 40 countries.")
    await customer.sees("Ann: Hi, this is Ann. Yes, we ship to 40 countries.")  # her first name
    await customer.say("great, thanks!")
    await expect(rep.timeline.get_by_text("great, thanks!")).to_have_count(1)
    await expect(customer.log).not_to_contain_text("VIP")

    # Closing asks the customer for a rating; the console lets go of it.
    await page.get_by_role("button", name="Close conversation").click()
    # ... and keeps showing it, read only (its rep may read and reopen it).
    await expect(page.locator("#pane-notice")).to_have_text("Conversation #1: Closed (resolved).")
    await expect(page.get_by_role("button", name="Reopen")).to_be_visible()
    await expect(customer.page.get_by_role("group", name=re.compile("Rate"))).to_be_visible()
    await expect(page.locator("#held > li")).to_have_count(0)


async def test_an_sms_customer_gets_the_reps_reply_through_twilio(
    tmp_path: Path, aiohttp_client: MakeClient, browser: Browser
) -> None:
    twilio = FakeTwilioRest()
    api_url = await twilio.start()
    try:
        settings = sms_settings(tmp_path, api_url, twilio_sms_from=OUR_NUMBER)
        desk, base = await open_desk(aiohttp_client, create_app(settings))
        texter = Texter(desk.client)
        await desk.rep("ann", "general,billing,technical")
        rep = await RepConsole.logged_in(browser, base, "ann")
        assert (await texter.text("Where is my order 1001?"))[0] == 200
        await texter.drain()
        assert (await texter.text(PERSON))[0] == 200
        await texter.drain()

        await expect(rep.offers).to_have_count(1)
        await expect(rep.offers).to_contain_text("SMS")
        await rep.page.locator("#offers").get_by_role("button", name="Accept").click()
        await expect(rep.page.get_by_label("Reply to the customer by SMS")).to_be_visible()
        await expect(rep.timeline.get_by_text("Where is my order 1001?")).to_be_visible()
        await expect(rep.section("Customer")).to_contain_text(texter.number)
        await expect(rep.section("Handoff brief")).to_contain_text("Needs")

        before = len(twilio.messages)
        await rep.reply("Ann here: order 1001 ships tomorrow.")
        sent = await twilio.wait_messages(before + 1)
        assert sent[-1]["Body"] == "Ann here: order 1001 ships tomorrow."
        assert sent[-1]["To"] == texter.number and sent[-1]["From"] == OUR_NUMBER
        await expect(rep.timeline.locator("li.author-rep")).to_contain_text("SMS")
    finally:
        await twilio.close()


async def test_an_email_customer_gets_a_threaded_reply_through_the_relay(
    tmp_path: Path, aiohttp_client: MakeClient, browser: Browser
) -> None:
    relay = CatchingRelay()
    relay_url = await relay.start()
    try:
        app = plain_app(tmp_path, email_address=SUPPORT, email_listen="127.0.0.1:0",
                        email_relay=relay_url)  # fmt: skip
        desk, base = await open_desk(aiohttp_client, app)
        mailer = Mailer(desk.client, relay)
        await desk.rep("ann", "general,billing,technical")
        rep = await RepConsole.logged_in(browser, base, "ann")
        first = mailer.compose("sam@example.net", PERSON, subject="Question about my order")
        await mailer.send(first)

        await expect(rep.offers).to_have_count(1)
        await rep.page.locator("#offers").get_by_role("button", name="Accept").click()
        await expect(rep.page.get_by_label("Reply to the customer by email")).to_be_visible()
        await expect(rep.timeline).to_contain_text(PERSON)
        before = len(relay.mails)
        await rep.reply("Hello Sam, Ann here. Which order is it about?")
        await eventually(lambda: _at_least(relay, before + 1))
        mail = relay.mails[-1]
        assert mail["In-Reply-To"] == first["Message-ID"]
        assert first["Message-ID"] in str(mail["References"]).split()
        assert mail["Subject"] == "Re: Question about my order"
        assert "Which order is it about?" in mail.get_content()
        assert relay.envelopes[-1] == (SUPPORT, ["sam@example.net"])
    finally:
        await relay.close()


async def _at_least(relay: CatchingRelay, count: int) -> bool:
    return len(relay.mails) >= count


async def test_only_skilled_reps_see_the_offer_and_logged_out_browsers_see_nothing(
    tmp_path: Path, aiohttp_client: MakeClient, browser: Browser
) -> None:
    desk, base = await open_desk(aiohttp_client, plain_app(tmp_path))
    await desk.rep("ann", "general")
    await desk.rep("tess", "technical")
    ann = await RepConsole.logged_in(browser, base, "ann")
    tess = await RepConsole.logged_in(browser, base, "tess")
    customer = await Customer.open(browser, base)
    await customer.say(PERSON)

    await expect(ann.offers).to_have_count(1)
    conv_id = await ann.offers.first.get_attribute("data-conversation")
    assert conv_id
    await expect(tess.page.locator("#offers-empty")).to_be_visible()
    await expect(tess.page.locator("#waiting > li")).to_have_count(0)
    assert await tess.api_status(f"/console/api/conversations/{conv_id}") == 404

    # A browser that never logged in: the login form, and 401 for every read.
    stranger = await RepConsole.open(browser, base)
    await expect(stranger.login_form).to_be_visible()
    await expect(stranger.page.locator("#console-view")).to_be_hidden()
    for path in (f"/console/api/conversations/{conv_id}", "/console/api/me"):
        assert await stranger.api_status(path) == 401

    # Ann's second tab shows the conversation; logging out in the first empties it.
    await ann.page.locator("#offers").get_by_role("button", name="Accept").click()
    await expect(ann.timeline).to_contain_text(PERSON)
    stale = await ann.context.new_page()
    await stale.goto(base + "/console")
    await stale.locator("#held").get_by_role("button", name=re.compile("^Open")).click()
    await expect(stale.get_by_role("log", name="Timeline")).to_contain_text(PERSON)
    await ann.page.get_by_role("button", name="Log out").click()
    await expect(ann.login_form).to_be_visible()
    await expect(stale.get_by_role("button", name="Log in")).to_be_visible()
    await expect(stale.locator("#timeline > li")).to_have_count(0)
    assert (
        await RepConsole(ann.context, stale, base).api_status(
            f"/console/api/conversations/{conv_id}"
        )
        == 401
    )


async def test_events_missed_while_the_socket_was_down_appear_once_after_reconnecting(
    tmp_path: Path, aiohttp_client: MakeClient, browser: Browser
) -> None:
    app = plain_app(tmp_path)
    outage = {"on": False}

    @web.middleware
    async def network(request: web.Request, handler: Any) -> web.StreamResponse:
        if outage["on"] and request.path == "/console/ws":
            raise web.HTTPServiceUnavailable()  # the console cannot get back in meanwhile
        return await handler(request)  # type: ignore[no-any-return]

    app.middlewares.append(network)
    desk, base = await open_desk(aiohttp_client, app)
    ann = await desk.rep("ann", "general")
    rep = await RepConsole.open(browser, base)
    sockets: list[tuple[str, list[dict[str, Any]]]] = []  # (url, frames received)

    def record(ws: WebSocket) -> None:
        frames: list[dict[str, Any]] = []
        sockets.append((ws.url, frames))
        ws.on("framereceived", lambda payload: frames.append(json.loads(payload)))

    rep.page.on("websocket", record)
    await rep.log_in("ann")
    customer = await Customer.open(browser, base)
    await customer.say(PERSON)
    await expect(rep.offers).to_have_count(1)
    await rep.page.locator("#offers").get_by_role("button", name="Accept").click()
    await expect(rep.timeline).to_contain_text("You're now talking with Ann.")
    shown = await rep.timeline.locator("li").count()

    outage["on"] = True
    app[ROUTING].hub.close_all()  # the server drops every console socket
    await expect(rep.connection).to_have_text("Reconnecting…")
    seen = max(f["seq"] for _, frames in sockets for f in frames if f["type"] == "event")
    await customer.say("first while you were away")
    await customer.say("second while you were away")
    await desk.service.set_presence(ann.id, desk.service.rep(ann.id).presence)  # an event too
    await expect(rep.connection).to_have_text("Reconnecting…")
    outage["on"] = False

    await expect(rep.connection).to_have_text("Live")
    for text in ("first while you were away", "second while you were away"):
        await expect(rep.timeline.get_by_text(text, exact=True)).to_have_count(1)
    await expect(rep.timeline.locator("li")).to_have_count(shown + 2)
    await customer.say("and after")
    await expect(rep.timeline.get_by_text("and after", exact=True)).to_have_count(1)
    await expect(rep.timeline.locator("li")).to_have_count(shown + 3)

    # The console resumed right after the last event it had seen: the server replayed
    # exactly the missed ones, each once, and nothing from before.
    url, frames = sockets[-1]
    assert url.endswith(f"/console/ws?after={seen}")
    events = [f for f in frames if f["type"] == "event"]
    seqs = [f["seq"] for f in events]
    assert seqs == sorted(set(seqs)) and seqs[0] > seen
    texts = [f["data"]["message"]["text"] for f in events if f["kind"] == "message"]
    assert texts == ["first while you were away", "second while you were away", "and after"]
    assert "presence" in [f["kind"] for f in events]
