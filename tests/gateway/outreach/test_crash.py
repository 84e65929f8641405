"""Sent once across a `kill -9` of the gateway process in the middle of the send."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import aiohttp

from tests.gateway.outreach.conftest import AUTH, OUR_NUMBER, TOKEN, order_delayed
from tests.support.nodes import ROOT, SECRET, Node, _spawn, free_port, wait_up
from tests.support.twilio_rest import ACCOUNT_SID, AUTH_TOKEN, FakeTwilioRest


async def _start(store_url: str, data: Path, api_url: str) -> Node:
    port = free_port()
    env = {
        **os.environ, "PYTHONPATH": str(ROOT), "GATEWAY_PORT": str(port),
        "GATEWAY_DATA_DIR": str(data), "GATEWAY_DATABASE_URL": store_url,
        "GATEWAY_SECRET_KEY": SECRET, "GATEWAY_API_TOKEN": TOKEN,
        "GATEWAY_PUBLIC_URL": "https://support.example.com",
        "GATEWAY_TWILIO_ACCOUNT_SID": ACCOUNT_SID, "GATEWAY_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "GATEWAY_TWILIO_API_URL": api_url, "GATEWAY_TWILIO_SMS_FROM": OUR_NUMBER,
        "GATEWAY_SMS_SEND_TIMEOUT_S": "2", "GATEWAY_OUTREACH_QUIET_HOURS": "",
        "GATEWAY_OUTREACH_POLL_S": "0.1", "GATEWAY_OUTBOX_POLL_S": "0.1",
        "GATEWAY_OUTREACH_LEASE_S": "5", "GATEWAY_LOG_LEVEL": "INFO",
    }  # fmt: skip
    log = data / f"node-{port}.log"
    node = Node(f"gw-{port}", port, _spawn(env, log), log)
    await wait_up(node)
    return node


async def test_an_outreach_killed_mid_send_is_sent_once(
    store_url: str, tmp_path: Path, twilio_rest: FakeTwilioRest
) -> None:
    api_url = await twilio_rest.start()
    twilio_rest.answer_delay_s = 60.0  # Twilio takes the message; its answer never comes back
    (tmp_path / "data").mkdir()
    node = await _start(store_url, tmp_path / "data", api_url)
    try:
        async with aiohttp.ClientSession(headers=AUTH) as http:
            resp = await http.post(f"{node.http}/api/v1/outreach/events", json=order_delayed())
            assert resp.status == 202
            outreach_id = (await resp.json())["id"]
            await twilio_rest.wait_until(lambda: len(twilio_rest.messages) == 1, within_s=30)
            node.kill()  # while the gateway waits for Twilio's answer
            twilio_rest.answer_delay_s = 0.0
            node = await _start(store_url, tmp_path / "data", api_url)
            # SQLite: one node, whose start takes back the dead one's claims. PostgreSQL
            # (nodes may share it): the claims run out first (the outbox's in 60 s).
            async with asyncio.timeout(40 if store_url.startswith("sqlite") else 100):
                while True:
                    got = await (
                        await http.get(f"{node.http}/api/v1/outreach/{outreach_id}")
                    ).json()
                    if got["state"] not in ("queued", "sending"):
                        break
                    await asyncio.sleep(0.2)
            assert got["state"] == "sent", got
            # The restarted gateway found the text at Twilio instead of sending it again.
            assert len(twilio_rest.messages) == 1
            assert twilio_rest.lookups >= 1
    finally:
        node.stop()
