"""A refund over the limit approved in the console, in a real browser: the customer
(signed in on the demo site as account C-1001) asks the LLM agent for a refund of
order 1001 and confirms; the agent (the real `openai` client against a scripted
local server) records that it waits for approval; a billing rep approves it in the
console, the refund is made on the backend and the customer is told in the widget."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect

from agent.demo_backend import DemoBackend
from gateway.app import BACKEND, create_app
from gateway.settings import load_settings
from tests.gateway.routing.console_ui import Customer, RepConsole
from tests.gateway.routing.desk import Desk, HandoverBrain
from tests.support.browser import chromium, needs_chromium
from tests.support.fake_openai import FakeOpenAI, text, tool_calls

pytestmark = [pytest.mark.browser, needs_chromium]

MakeClient = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


@pytest.fixture
async def llm() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


async def test_a_rep_approves_a_refund_and_the_customer_is_told(
    tmp_path: Path, aiohttp_client: MakeClient, browser: Browser, llm: FakeOpenAI
) -> None:
    settings = load_settings(data_dir=tmp_path, llm_base_url=llm.base_url, llm_model="test-model")
    client = await aiohttp_client(create_app(settings))
    desk, base = Desk(client, HandoverBrain()), str(client.make_url("")).rstrip("/")
    await desk.rep("bea", "billing", available=False)
    rep = await RepConsole.logged_in(browser, base, "bea")
    await expect(rep.page.get_by_text("Nothing waits for approval.")).to_be_visible()

    llm.add(
        tool_calls(("refund_order", {"order_id": "1001", "reason": "arrived broken"})),
        text("I can look into that for you."),
    )
    customer = await Customer.open(browser, base, "/?as=C-1001")
    await customer.say("Order 1001 arrived broken, I want a refund")
    await customer.sees("shall I refund $129.99 for order 1001?")
    await customer.say("yes")
    await customer.sees("needs a quick approval")

    approvals = rep.page.locator("#approvals > li")
    await expect(approvals).to_have_count(1)
    await expect(approvals).to_contain_text("Refund $129.99 for order 1001")
    await approvals.get_by_role("button", name="Open").click()
    await expect(rep.timeline).to_contain_text("Order 1001 arrived broken")
    read_only = rep.page.get_by_text("Read only: you do not hold this conversation.")
    await expect(read_only).to_be_visible()

    backend = client.app[BACKEND]
    assert isinstance(backend, DemoBackend)
    before = [c for c in (await backend.billing_summary("C-1001")).recent if c.kind == "refund"]
    assert before == []
    await approvals.get_by_role("button", name="Approve").click()
    await customer.sees("Good news: your refund of $129.99 for order 1001 was approved")
    await expect(rep.page.locator("#approvals > li")).to_have_count(0)
    await expect(rep.timeline).to_contain_text("was approved")
    refunds = [c for c in (await backend.billing_summary("C-1001")).recent if c.kind == "refund"]
    assert [(c.order_id, c.amount_cents) for c in refunds] == [("1001", 12999)]
