"""Real gateway processes sharing one PostgreSQL database and one Redis bus, and
clients that talk to them the way browsers and consoles do (websockets, the
console's JSON API)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
SECRET = "scale-out-test-secret-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Node:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL: no shutdown, no goodbye (a crashed machine)."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Cluster:
    """Nodes of one gateway: one database, one bus prefix."""

    db_url: str
    redis_url: str
    prefix: str
    tmp: Path
    env: dict[str, str] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)

    async def start(self, name: str) -> Node:
        port = free_port()
        data = self.tmp / name
        data.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "GATEWAY_PORT": str(port),
            "GATEWAY_DATA_DIR": str(data),
            "GATEWAY_DATABASE_URL": self.db_url,
            "GATEWAY_REDIS_URL": self.redis_url,
            "GATEWAY_REDIS_PREFIX": self.prefix,
            "GATEWAY_NODE_ID": name,
            "GATEWAY_SECRET_KEY": SECRET,
            "GATEWAY_LOG_LEVEL": "INFO",
            "GATEWAY_CLUSTER_RECOVER_AFTER_S": "2",
            "GATEWAY_OFFER_TIMEOUT_S": "60",
            **self.env,
        }
        log = data / "node.log"
        proc = _spawn(env, log)
        node = Node(name, port, proc, log)
        self.nodes.append(node)
        await wait_up(node)
        return node

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def _spawn(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve"], env=env, cwd=ROOT, stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip


async def wait_up(node: Node, timeout_s: float = 60.0) -> None:
    async with aiohttp.ClientSession() as session, asyncio.timeout(timeout_s):
        while True:
            if node.proc.poll() is not None:
                raise RuntimeError(f"{node.name} exited: {node.log.read_text()[-2000:]}")
            try:
                async with session.get(f"{node.http}/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)


Frame = dict[str, Any]


class Chat:
    """A web chat visitor's socket on one node (PROTOCOL.md)."""

    def __init__(self, session: aiohttp.ClientSession, user: Frame | None = None) -> None:
        self.session = session
        self.user = user  # the embedding site's signed-in user (PROTOCOL.md), or None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.token: str | None = None
        self.last_seq = 0
        self.frames: list[Frame] = []
        self._new = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def connect(self, node: Node) -> None:
        self.ws = await self.session.ws_connect(f"{node.ws}/webchat/ws")
        self.frames = []
        self._reader = asyncio.create_task(self._read(self.ws))
        resume = self.last_seq if self.token else None
        await self.ws.send_json({"type": "hello", "visitor_token": self.token,
                                 "user": self.user, "last_seq": resume})  # fmt: skip
        welcome = await self.wait(lambda f: f["type"] == "welcome")
        self.token = welcome["visitor_token"]
        await self.wait(lambda f: f["type"] == "history" and f.get("complete"))

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                frame = json.loads(msg.data)
                self.frames.append(frame)
                for m in frame.get("messages", [frame] if frame["type"] == "message" else []):
                    self.last_seq = max(self.last_seq, int(m.get("seq", 0)))
                self._new.set()

    async def wait(self, match: Callable[[Frame], bool], timeout_s: float = 20.0) -> Frame:
        async with asyncio.timeout(timeout_s):
            while True:
                for frame in self.frames:
                    if match(frame):
                        return frame
                self._new.clear()
                await self._new.wait()

    async def say(self, text: str) -> Frame:
        """Send and wait for the acknowledgement (the message is committed)."""
        assert self.ws is not None
        client_id = uuid.uuid4().hex
        await self.ws.send_json({"type": "message", "text": text, "client_id": client_id})
        return await self.wait(lambda f: f["type"] == "ack" and f["client_id"] == client_id)

    def texts(self, author: str) -> list[str]:
        out = []
        for frame in self.frames:
            for m in frame.get("messages", [frame] if frame["type"] == "message" else []):
                if m.get("author") == author:
                    out.append(m["text"])
        return out

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()


class Console:
    """A rep's console (JSON API and live websocket) on one node."""

    def __init__(self, node: Node) -> None:
        self.node = node
        # unsafe: keep cookies from an IP address host (127.0.0.1)
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""
        self.events: list[Frame] = []
        self._new = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def login(self, username: str, password: str) -> None:
        async with self.session.post(
            f"{self.node.http}/console/login", json={"username": username, "password": password}
        ) as r:
            assert r.status == 200, await r.text()
            self.csrf = (await r.json())["csrf"]
        ws = await self.session.ws_connect(f"{self.node.ws}/console/ws?after=0")
        self._reader = asyncio.create_task(self._read(ws))

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                self.events.append(json.loads(msg.data))
                self._new.set()

    async def event(self, match: Callable[[Frame], bool], timeout_s: float = 20.0) -> Frame:
        async with asyncio.timeout(timeout_s):
            while True:
                for frame in self.events:
                    if frame.get("type") == "event" and match(frame):
                        return frame
                self._new.clear()
                await self._new.wait()

    async def post(self, path: str, body: Frame | None = None) -> Any:
        status, answer = await self.request("POST", path, body)
        assert status in (200, 204), f"{path}: {status} {answer}"
        return answer

    async def get(self, path: str) -> Any:
        status, answer = await self.request("GET", path)
        assert status == 200, f"{path}: {status} {answer}"
        return answer

    async def request(self, method: str, path: str, body: Frame | None = None) -> tuple[int, Any]:
        """(status, JSON answer or None) of a console API call, whatever the status."""
        async with self.session.request(
            method, f"{self.node.http}/console/api{path}", headers={"X-CSRF-Token": self.csrf},
            json=(body or {}) if method == "POST" else None,
        ) as r:  # fmt: skip
            if r.content_type == "application/json":
                return r.status, await r.json()
            return r.status, None

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        await self.session.close()


__all__ = ["SECRET", "Chat", "Cluster", "Console", "Node", "free_port"]
