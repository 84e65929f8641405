"""Helpers for driving the web chat over a real websocket in tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.protocols import Brain
from gateway.settings import load_settings
from tests.support.brains import EchoBrain

Frame = dict[str, Any]
TIMEOUT_S = 5.0


def build_app(data_dir: Path, brain: Brain | None = None, **overrides: Any) -> web.Application:
    """The real app on a temporary data dir, with a deterministic brain."""
    settings = load_settings(data_dir=data_dir, **overrides)
    return create_app(settings, brain=brain if brain is not None else EchoBrain())


class Chat:
    """One browser tab: a websocket plus every frame it has received, in order."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[Frame] = []

    @classmethod
    async def open(cls, client: TestClient[Any, Any], **kwargs: Any) -> Chat:
        return cls(await client.ws_connect("/webchat/ws", **kwargs))

    async def send(self, frame: Frame) -> None:
        await self.ws.send_str(json.dumps(frame))

    async def recv(self, wait_s: float = TIMEOUT_S) -> Frame:
        msg = await self.ws.receive(timeout=wait_s)
        assert msg.type is aiohttp.WSMsgType.TEXT, f"expected a text frame, got {msg!r}"
        frame: Frame = json.loads(msg.data)
        self.frames.append(frame)
        return frame

    async def until(self, pred: Callable[[Frame], bool], wait_s: float = TIMEOUT_S) -> Frame:
        """Receive until a frame matches `pred` (earlier frames stay in `frames`)."""
        while True:
            frame = await self.recv(wait_s)
            if pred(frame):
                return frame

    async def expect(self, kind: str, wait_s: float = TIMEOUT_S) -> Frame:
        """The next frame of type `kind`, skipping typing indicators."""
        while True:
            frame = await self.recv(wait_s)
            if frame["type"] != "typing":
                assert frame["type"] == kind, f"expected {kind}, got {frame}"
                return frame

    async def hello(
        self, token: str | None = None, user: Frame | None = None, last_seq: int | None = None
    ) -> tuple[Frame, list[Frame]]:
        """Say hello; return the welcome and every message of the history pages."""
        await self.send(
            {"type": "hello", "visitor_token": token, "user": user, "last_seq": last_seq}
        )
        welcome = await self.until(lambda f: f["type"] == "welcome")
        messages: list[Frame] = []
        while True:
            page = await self.expect("history")
            messages.extend(page["messages"])
            if page["complete"]:
                return welcome, messages

    async def say(self, text: str, client_id: str) -> Frame:
        """Send a message and return its ack."""
        await self.send({"type": "message", "text": text, "client_id": client_id})
        return await self.until(lambda f: f["type"] in {"ack", "error"})

    async def reply(self, wait_s: float = TIMEOUT_S) -> Frame:
        """The next message not written by the customer."""
        return await self.until(
            lambda f: f["type"] == "message" and f["author"] != "customer", wait_s
        )

    async def close(self) -> None:
        await self.ws.close()


def messages(frames: list[Frame]) -> list[Frame]:
    return [f for f in frames if f["type"] == "message"]
