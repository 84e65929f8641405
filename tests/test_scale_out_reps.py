"""Reps added and changed with the `gateway reps` command while two real `gateway
serve` processes run on one PostgreSQL database and one Redis bus: the routing
leader sees them at once (NOTIFY at the command's commit), without a restart."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support import services
from tests.support.nodes import ROOT, Chat, Cluster, Console

PASSWORD = "rep password 123"


@pytest.fixture
async def cluster(pg_url: str, redis_url: str, tmp_path: Path) -> AsyncIterator[Cluster]:
    nodes = Cluster(pg_url, redis_url, services.redis_prefix(), tmp_path)
    yield nodes
    nodes.stop()


async def reps(pg_url: str, tmp_path: Path, *args: str, stdin: str = "") -> str:
    """Run `gateway reps ...` as an operator does, against the nodes' database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(PYTHONPATH=str(ROOT), GATEWAY_DATABASE_URL=pg_url,
               GATEWAY_DATA_DIR=str(tmp_path / "cli"))  # fmt: skip
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "gateway.cli", "reps", *args],
        input=stdin, capture_output=True, text=True, env=env, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


async def eventually_me(console: Console, check: Any, within_s: float = 10.0) -> Any:
    async with asyncio.timeout(within_s):
        while True:
            status, me = await console.request("GET", "/me")
            if status == 200 and check(me):
                return me
            await asyncio.sleep(0.1)


async def test_reps_added_and_changed_while_nodes_run_reach_the_routing(
    cluster: Cluster, pg_url: str, tmp_path: Path
) -> None:
    a = await cluster.start("a")  # the routing leader
    b = await cluster.start("b")
    # Added while both nodes run; no node restarts.
    added = await reps(pg_url, tmp_path, "add", "bob", "--name", "Bob", "--skills", "general",
                       "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
    assert "added rep" in added
    bob = Console(b)
    async with aiohttp.ClientSession() as session:
        chat = Chat(session)
        try:
            await bob.login("bob", PASSWORD)
            me = await eventually_me(bob, lambda me: True)
            assert me["rep"]["username"] == "bob" and set(me["queues"]) == {"general"}
            await bob.post("/presence", {"status": "available"})
            # The leader offers him work.
            await chat.connect(b)
            await chat.say("I want to talk to a real person please")
            offer = await bob.event(lambda e: e["kind"] == "offer")
            await bob.post(f"/offers/{offer['data']['offer_id']}/accept")
            await chat.wait(lambda f: f["type"] == "message" and "Bob" in f["text"])

            # Changed while the nodes run: the leader's picture follows (read on A).
            changed = await reps(pg_url, tmp_path, "update", "bob", "--name", "Robert",
                                 "--skills", "billing,general", "--max-text", "7")  # fmt: skip
            assert "Robert" in changed
            on_a = Console(a)
            try:
                await on_a.login("bob", PASSWORD)
                me = await eventually_me(on_a, lambda me: me["rep"]["display_name"] == "Robert")
                assert set(me["queues"]) == {"billing", "general"}
                assert me["rep"]["max_text"] == 7
                assert me["rep"]["presence"] == "available"  # what the picture held stays
                assert [h["conversation_id"] for h in me["held"]] == [
                    offer["data"]["conversation_id"]
                ]
            finally:
                await on_a.close()
        finally:
            await chat.close()
            await bob.close()
