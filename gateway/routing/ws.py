"""`/console/ws`: live console updates, resumable by sequence number.

The console connects with `?after=N` (the last `seq` it saw). The socket
subscribes to live events first, then replays everything after N from the
store, then forwards live events it has not replayed: nothing is missed and
nothing is sent twice. Frames: `{"type": "event", "seq", "kind", "data"}`;
`{"type": "ping"}` is answered with `{"type": "pong"}`. Typing indicators go both ways
and are not stored: `{"type": "typing", "conversation_id", "active"}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Literal
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.errors import GatewayError
from gateway.routing.front import RoutingFront
from gateway.routing.hub import Subscriber
from gateway.routing.models import ConsoleEvent
from gateway.routing.state import ROUTING
from gateway.routing.store import RoutingStore

REPLAY_PAGE = 500
_SEQ_MAX = 2**63 - 1


def _frame(event: ConsoleEvent) -> str:
    return json.dumps(
        {"type": "event", "seq": event.seq, "kind": event.kind, "data": event.data},
        separators=(",", ":"),
    )


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser (a browser always sends Origin on websockets)
    return urlsplit(origin).netloc == request.host


async def console_socket(request: web.Request) -> web.StreamResponse:
    state = request.app[ROUTING]
    service, auth, store = state.ready()
    session = await auth.session(request)
    if session is None:
        raise web.HTTPUnauthorized(
            text='{"error": "unauthorized"}', content_type="application/json"
        )
    if not _same_origin(request):
        raise web.HTTPForbidden(text='{"error": "origin"}', content_type="application/json")
    try:
        after = int(request.query.get("after", "0"))
        if abs(after) > _SEQ_MAX:  # beyond any database integer
            raise ValueError(after)
    except ValueError as exc:
        raise web.HTTPBadRequest(text='{"error": "after must be an integer"}',
                                 content_type="application/json") from exc  # fmt: skip
    queues = await service.queues_of(session.rep_id)
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    sub = Subscriber(session.rep_id, queues, session.id)
    state.hub.subscribe(sub)
    service.console_connected(session.rep_id)
    sender = asyncio.create_task(_send(ws, sub, store, session.rep_id, after))
    try:
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                await _on_frame(ws, service, session.rep_id, msg.data)
    finally:
        state.hub.unsubscribe(sub)
        service.console_disconnected(session.rep_id)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
    return ws


class _Typing(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    type: Literal["typing"]
    conversation_id: int = Field(ge=0, le=_SEQ_MAX)
    active: bool


async def _on_frame(
    ws: web.WebSocketResponse, service: RoutingFront, rep_id: int, data: str
) -> None:
    """`ping` -> `pong`; `typing` on a held conversation shows on the customer's side."""
    try:
        frame = json.loads(data)
    except (ValueError, RecursionError):  # not JSON, digits over Python's limit, too deep
        return
    if not isinstance(frame, dict):
        return
    if frame.get("type") == "ping":
        await ws.send_str('{"type":"pong"}')
    elif frame.get("type") == "typing":
        try:
            typing = _Typing.model_validate(frame)
            await service.typing(rep_id, typing.conversation_id, typing.active)
        except (ValidationError, GatewayError):
            return  # an indicator is not worth an error frame


async def _send(
    ws: web.WebSocketResponse, sub: Subscriber, routing: RoutingStore, rep_id: int, after: int
) -> None:
    last = after
    await ws.send_str(json.dumps({"type": "hello", "rep_id": rep_id, "after": after}))
    while True:
        page = await routing.console_events(rep_id, tuple(sub.queues), last, REPLAY_PAGE)
        for event in page:
            await ws.send_str(_frame(event))
            last = event.seq
        if len(page) < REPLAY_PAGE:
            break
    await ws.send_str(json.dumps({"type": "replayed", "seq": last}))
    while True:
        live = await sub.events.get()
        if live is None:  # overflow or shutdown: the console reconnects with ?after=
            await ws.close(code=1013, message=b"resume with ?after=")
            return
        if isinstance(live, dict):
            await ws.send_str(json.dumps(live))
        elif live.seq > last:
            await ws.send_str(_frame(live))
            last = live.seq
