"""Labels on conversations: an admin keeps the set (name, optional colour); any rep
adds or removes them on a conversation they may see (each change is a `label.added`
/ `label.removed` event of the conversation, in its activity log); the search
filters by label and shows each hit's labels."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import Field

from gateway.desk.admin_api import with_role
from gateway.desk.state import DESK
from gateway.errors import NotFoundError
from gateway.http_input import path_id
from gateway.routing.api import _Body, _body
from gateway.routing.models import Rep, Role
from gateway.routing.state import ROUTING


class LabelBody(_Body):
    name: str = Field(min_length=1, max_length=50, pattern=r"\S")
    colour: str | None = Field(default=None, pattern=r"^#[0-9a-fA-F]{6}$")


async def listing(request: web.Request, me: Rep) -> Any:
    store = request.app[DESK].ready()[0]
    return {"labels": [x.model_dump(mode="json") for x in await store.labels()]}


async def add(request: web.Request, me: Rep) -> Any:
    store = request.app[DESK].ready()[0]
    body: LabelBody = await _body(request, LabelBody)
    return (await store.add_label(body.name.strip(), body.colour)).model_dump(mode="json")


async def update(request: web.Request, me: Rep) -> Any:
    store = request.app[DESK].ready()[0]
    body: LabelBody = await _body(request, LabelBody)
    label = await store.update_label(path_id(request, "lid"), body.name.strip(), body.colour)
    return label.model_dump(mode="json")


async def delete(request: web.Request, me: Rep) -> Any:
    store = request.app[DESK].ready()[0]
    if not await store.delete_label(path_id(request, "lid")):
        raise NotFoundError("no such label")


async def _visible(request: web.Request, me: Rep) -> int:
    front = request.app[ROUTING].ready()[0]
    cid = path_id(request, "cid")
    await front.conversation(me.id, cid)  # NotFoundError unless this rep may see it
    return cid


async def of_conversation(request: web.Request, me: Rep) -> Any:
    store = request.app[DESK].ready()[0]
    cid = await _visible(request, me)
    return {"labels": [x.model_dump(mode="json") for x in await store.conversation_labels(cid)]}


async def put_on(request: web.Request, me: Rep) -> Any:
    """`PUT .../labels/{lid}`: the conversation's labels afterwards (idempotent)."""
    return await _change(request, me, on=True)


async def take_off(request: web.Request, me: Rep) -> Any:
    return await _change(request, me, on=False)


async def _change(request: web.Request, me: Rep, *, on: bool) -> Any:
    store = request.app[DESK].ready()[0]
    cid = await _visible(request, me)
    await store.label_conversation(cid, path_id(request, "lid"), me.id, on=on)
    return {"labels": [x.model_dump(mode="json") for x in await store.conversation_labels(cid)]}


def add_routes(app: web.Application) -> None:
    r = app.router
    base = "/console/api/conversations/{cid}/labels"
    r.add_get("/console/api/labels", with_role(listing, Role.REP, write=False))
    r.add_post("/console/api/admin/labels", with_role(add, Role.ADMIN, write=True))
    r.add_patch("/console/api/admin/labels/{lid}", with_role(update, Role.ADMIN, write=True))
    r.add_delete("/console/api/admin/labels/{lid}", with_role(delete, Role.ADMIN, write=True))
    r.add_get(base, with_role(of_conversation, Role.REP, write=False))
    r.add_put(base + "/{lid}", with_role(put_on, Role.REP, write=True))
    r.add_delete(base + "/{lid}", with_role(take_off, Role.REP, write=True))


__all__ = ["add_routes"]
