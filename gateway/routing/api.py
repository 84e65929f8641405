"""The console's JSON HTTP API under `/console/...`.

Every `/console/api` route needs a rep session (401 without); writes also need
the session's CSRF token (403 without). A rep sees only conversations offered
to them, held by them, or waiting in a queue they serve (404 otherwise, so
that other conversations' existence does not leak).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.bus import RemoteError
from gateway.errors import BackendError, ConflictError, NotFoundError
from gateway.http_input import DB_INT_MAX, path_id
from gateway.routing.front import RoutingFront
from gateway.routing.models import Presence, Session
from gateway.routing.state import ROUTING
from gateway.routing.throttle import LoginThrottled

Handler = Callable[[web.Request, RoutingFront, Session], Awaitable[Any]]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LoginBody(_Body):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1000)


class PresenceBody(_Body):
    status: Presence


class TextBody(_Body):
    text: str = Field(min_length=1, max_length=4000)


class TransferBody(_Body):
    queue: str | None = None
    rep_id: int | None = Field(default=None, ge=0, le=DB_INT_MAX)
    note: str = Field(default="", max_length=2000)


class CloseBody(_Body):
    disposition: str = Field(min_length=1, max_length=60)
    note: str | None = Field(default=None, max_length=2000)


class DecisionBody(_Body):
    approve: bool


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


async def _body(request: web.Request, model: type[_Body]) -> Any:
    try:
        return model.model_validate_json(await request.read())
    except ValidationError as exc:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "invalid_body", "message": exc.errors(
                include_url=False, include_context=False, include_input=False)}),
            content_type="application/json",
        ) from exc  # fmt: skip


def route(handler: Handler, *, write: bool) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Authenticate (and CSRF-check writes), run, and map errors to HTTP statuses."""

    async def wrapped(request: web.Request) -> web.Response:
        service, auth, _ = request.app[ROUTING].ready()
        session = await auth.require(request, write=write)
        try:
            result = await handler(request, service, session)
        except NotFoundError as exc:
            return _error(404, "not_found", str(exc))
        except ConflictError as exc:  # RoutingError, here or as the leader raised it
            return _error(409, "conflict", str(exc))
        except BackendError as exc:
            return _error(502, "backend", f"the business backend refused: {exc}")
        except RemoteError as exc:  # the routing leader failed or is being elected
            return _error(503, "unavailable", f"routing is unavailable, try again: {exc}")
        except ValueError as exc:
            return _error(400, "invalid", str(exc))
        if result is None:
            return web.Response(status=204)
        return web.json_response(result)

    return wrapped


async def login(request: web.Request) -> web.Response:
    _, auth, _ = request.app[ROUTING].ready()
    body = await _body(request, LoginBody)
    try:
        result = await auth.login(body.username, body.password, request.remote)
    except LoginThrottled:
        return _error(429, "throttled", "too many wrong passwords; try again later")
    if result is None:
        return _error(401, "bad_credentials", "wrong username or password")
    session, cookie = result
    response = web.json_response({"rep_id": session.rep_id, "csrf": session.csrf})
    auth.set_cookie(response, cookie)
    return response


async def logout(request: web.Request) -> web.Response:
    _, auth, _ = request.app[ROUTING].ready()
    session = await auth.require(request, write=True)
    await auth.logout(session)
    state = request.app[ROUTING]
    if state.feed is not None:
        state.feed.end_session(session.id)  # on every node
    service = request.app[ROUTING].ready()[0]
    # Logged out means not taking work: pending offers go to others at once.
    await service.set_presence(session.rep_id, Presence.OFFLINE)
    response = web.Response(status=204)
    response.del_cookie("gw_console", path="/")
    return response


async def me(request: web.Request, service: RoutingFront, s: Session) -> Any:
    return {**await service.overview(s.rep_id), "csrf": s.csrf}


async def directory(request: web.Request, service: RoutingFront, s: Session) -> Any:
    return await service.directory(s.rep_id)


async def presence(request: web.Request, service: RoutingFront, s: Session) -> Any:
    body = await _body(request, PresenceBody)
    rep = await service.set_presence(s.rep_id, body.status)
    return rep.model_dump(mode="json")


async def conversation(request: web.Request, service: RoutingFront, s: Session) -> Any:
    return await service.conversation(s.rep_id, path_id(request, "cid"))


async def approvals(request: web.Request, service: RoutingFront, s: Session) -> Any:
    return {"approvals": await service.approvals_for(s.rep_id)}


async def conversation_approvals(request: web.Request, service: RoutingFront, s: Session) -> Any:
    return {"approvals": await service.approvals_for(s.rep_id, path_id(request, "cid"))}


async def decide(request: web.Request, service: RoutingFront, s: Session) -> Any:
    body = await _body(request, DecisionBody)
    cid, approval_id = path_id(request, "cid"), request.match_info["aid"]
    return await service.decide(s.rep_id, cid, approval_id, approve=body.approve)


async def accept(request: web.Request, service: RoutingFront, s: Session) -> Any:
    conv = await service.accept(s.rep_id, path_id(request, "oid"))
    return conv.model_dump(mode="json", exclude={"agent_state"})


async def decline(request: web.Request, service: RoutingFront, s: Session) -> Any:
    await service.decline(s.rep_id, path_id(request, "oid"))


async def reply(request: web.Request, service: RoutingFront, s: Session) -> Any:
    body = await _body(request, TextBody)
    msg = await service.reply(s.rep_id, path_id(request, "cid"), body.text)
    return msg.model_dump(mode="json")


async def note(request: web.Request, service: RoutingFront, s: Session) -> Any:
    body = await _body(request, TextBody)
    msg = await service.note(s.rep_id, path_id(request, "cid"), body.text)
    return msg.model_dump(mode="json")


async def transfer(request: web.Request, service: RoutingFront, s: Session) -> Any:
    body = await _body(request, TransferBody)
    entry = await service.transfer(
        s.rep_id, path_id(request, "cid"), queue=body.queue, to_rep=body.rep_id, note=body.note
    )
    return entry.model_dump(mode="json")


async def hand_back(request: web.Request, service: RoutingFront, s: Session) -> Any:
    conv = await service.hand_back(s.rep_id, path_id(request, "cid"))
    return conv.model_dump(mode="json", exclude={"agent_state"})


async def close(request: web.Request, service: RoutingFront, s: Session) -> Any:
    body = await _body(request, CloseBody)
    conv = await service.close(s.rep_id, path_id(request, "cid"), body.disposition, body.note)
    return conv.model_dump(mode="json", exclude={"agent_state"})


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/console/login", login)
    r.add_post("/console/logout", logout)
    api = "/console/api"
    r.add_get(f"{api}/me", route(me, write=False))
    r.add_get(f"{api}/directory", route(directory, write=False))
    r.add_get(f"{api}/approvals", route(approvals, write=False))
    r.add_post(f"{api}/presence", route(presence, write=True))
    r.add_get(f"{api}/conversations/{{cid}}", route(conversation, write=False))
    r.add_post(f"{api}/offers/{{oid}}/accept", route(accept, write=True))
    r.add_post(f"{api}/offers/{{oid}}/decline", route(decline, write=True))
    r.add_post(f"{api}/conversations/{{cid}}/reply", route(reply, write=True))
    r.add_post(f"{api}/conversations/{{cid}}/note", route(note, write=True))
    r.add_post(f"{api}/conversations/{{cid}}/transfer", route(transfer, write=True))
    r.add_post(f"{api}/conversations/{{cid}}/handback", route(hand_back, write=True))
    r.add_post(f"{api}/conversations/{{cid}}/close", route(close, write=True))
    r.add_get(f"{api}/conversations/{{cid}}/approvals", route(conversation_approvals, write=False))
    r.add_post(f"{api}/conversations/{{cid}}/approvals/{{aid}}", route(decide, write=True))
