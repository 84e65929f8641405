"""Canned responses: texts an admin keeps in the console, which any rep inserts in a
reply with its variables filled for the conversation at hand:

- `{first_name}`: the customer's first name (or "there" when unknown);
- `{order}`: the id of their latest order in the business backend (empty if none);
- `{rep_name}`: the rep's display name.

Variables are replaced by a plain pattern (never `str.format`: no attribute access
from an admin's text); an unknown `{word}` is left as written."""

from __future__ import annotations

import logging
import re
from typing import Any

from aiohttp import web
from pydantic import Field

from gateway.desk.admin_api import with_role
from gateway.desk.state import DESK
from gateway.errors import NotFoundError
from gateway.http_input import path_id
from gateway.keys import BACKEND, STORE
from gateway.models import Customer
from gateway.routing.api import _Body, _body
from gateway.routing.models import Rep, Role
from gateway.routing.state import ROUTING

log = logging.getLogger(__name__)
VARIABLE = re.compile(r"\{(\w+)\}")


class CannedBody(_Body):
    name: str = Field(min_length=1, max_length=100)
    text: str = Field(min_length=1, max_length=4000)


async def _latest_order(backend: object, customer: Customer) -> str:
    list_orders = getattr(backend, "list_orders", None)
    if list_orders is None or not customer.account_ref:
        return ""
    try:
        orders = await list_orders(customer.account_ref, limit=1)
    except Exception as exc:  # the backend's own errors: the variable stays empty
        log.warning("canned: the backend failed for %s: %s", customer.account_ref, exc)
        return ""
    return str(orders[0].id) if orders else ""


async def fill(text: str, customer: Customer, rep: Rep, backend: object | None) -> str:
    """`text` with its variables filled for this customer and rep."""
    names = set(VARIABLE.findall(text))
    values = {
        "first_name": (customer.display_name or "").split(" ")[0] or "there",
        "rep_name": rep.display_name,
    }
    if "order" in names:
        values["order"] = await _latest_order(backend, customer) if backend else ""
    return VARIABLE.sub(lambda m: values.get(m[1], m[0]), text)


async def listing(request: web.Request, me: Rep) -> Any:
    store = request.app[DESK].ready()[0]
    return {"canned": [c.model_dump(mode="json") for c in await store.canned()]}


async def add(request: web.Request, me: Rep) -> Any:
    store = request.app[DESK].ready()[0]
    body: CannedBody = await _body(request, CannedBody)
    return (await store.add_canned(body.name, body.text, me.id)).model_dump(mode="json")


async def delete(request: web.Request, me: Rep) -> Any:
    store = request.app[DESK].ready()[0]
    if not await store.delete_canned(path_id(request, "id")):
        raise NotFoundError("no such canned response")


async def filled(request: web.Request, me: Rep) -> Any:
    """The canned response filled for a conversation the rep may see."""
    store = request.app[DESK].ready()[0]
    front = request.app[ROUTING].ready()[0]
    cid, canned_id = path_id(request, "cid"), path_id(request, "id")
    await front.conversation(me.id, cid)  # NotFoundError unless this rep may see it
    found = [c for c in await store.canned() if c.id == canned_id]
    if not found:
        raise NotFoundError("no such canned response")
    gateway_store = request.app[STORE]
    customer = await gateway_store.get_customer(
        (await gateway_store.get_conversation(cid)).customer_id
    )
    return {"text": await fill(found[0].text, customer, me, request.app.get(BACKEND))}


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/console/api/canned", with_role(listing, Role.REP, write=False))
    r.add_post("/console/api/admin/canned", with_role(add, Role.ADMIN, write=True))
    r.add_delete("/console/api/admin/canned/{id}", with_role(delete, Role.ADMIN, write=True))
    r.add_get(
        "/console/api/conversations/{cid}/canned/{id}", with_role(filled, Role.REP, write=False)
    )


__all__ = ["VARIABLE", "add_routes", "fill"]
