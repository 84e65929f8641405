"""The outreach HTTP API: `POST /api/v1/outreach/events`, `GET /api/v1/outreach/{id}`,
`GET /api/v1/outreach/summary` (Bearer tokens, gateway/api_auth.py), and the
one-click unsubscribe link of outreach mail (`/outreach/unsubscribe/{token}`)."""

from __future__ import annotations

import html
import json
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from gateway.desk.reports_api import period
from gateway.desk.state import DESK
from gateway.errors import NotFoundError
from gateway.keys import OUTREACH, STORE
from gateway.models import Identity, IdentityKind
from gateway.outreach.models import Outreach, OutreachEvent, OutreachFigures
from gateway.outreach.respect import UNSUBSCRIBE_PATH
from gateway.outreach.service import InvalidEvent

MAX_EVENT_BYTES = 64 * 1024


def _error(cls: type[web.HTTPException], error: str, message: str, **extra: Any) -> (
    web.HTTPException
):  # fmt: skip
    body = json.dumps({"error": error, "message": message, **extra})
    return cls(text=body, content_type="application/json")


def _problems(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "body"
        out.append(f"{where}: {err['msg']}")
    return out


def view(outreach: Outreach) -> dict[str, Any]:
    """What the API answers about one outreach."""
    return outreach.model_dump(mode="json")


async def post_event(request: web.Request) -> web.Response:
    await request.app[DESK].ready()[1].require(request)
    raw = await request.read()
    if len(raw) > MAX_EVENT_BYTES:
        raise _error(web.HTTPRequestEntityTooLarge, "too_large",
                     f"an event is at most {MAX_EVENT_BYTES} bytes")  # fmt: skip
    try:
        event = OutreachEvent.model_validate_json(raw)
    except ValidationError as exc:
        problems = _problems(exc)
        raise _error(web.HTTPUnprocessableEntity, "invalid", problems[0],
                     problems=problems) from None  # fmt: skip
    service = request.app[OUTREACH]
    try:
        outreach, created = await service.submit(event)
    except InvalidEvent as exc:
        raise _error(web.HTTPUnprocessableEntity, "invalid", str(exc),
                     problems=[str(exc)]) from None  # fmt: skip
    body = {"id": outreach.id, "state": outreach.state.value, "event_id": outreach.event_id,
            "duplicate": not created}  # fmt: skip
    return web.json_response(body, status=202)


async def get_outreach(request: web.Request) -> web.Response:
    await request.app[DESK].ready()[1].require(request)
    outreach_id = request.match_info["id"]
    if len(outreach_id) > 40:
        raise _error(web.HTTPNotFound, "not_found", "no such outreach")
    try:
        found = await request.app[OUTREACH].get(outreach_id)
    except NotFoundError:
        raise _error(web.HTTPNotFound, "not_found", "no such outreach") from None
    return web.json_response(view(found))


async def summary(request: web.Request) -> web.Response:
    """The outreach figures of the events received in a period (`since`, `until`)."""
    await request.app[DESK].ready()[1].require(request)
    since, until = period(request.query)
    figures = await request.app[OUTREACH].outreach.figures(since, until)
    body = {"since": since.isoformat(), "until": until.isoformat(),
            "outreach": figures.model_dump(mode="json")}  # fmt: skip
    return web.json_response(body)


_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Unsubscribe</title>
</head><body style="font-family:sans-serif;max-width:32em;margin:3em auto">{body}</body></html>"""


def _page(body: str, status: int = 200) -> web.Response:
    return web.Response(text=_PAGE.format(body=body), status=status, content_type="text/html")


async def unsubscribe_page(request: web.Request) -> web.Response:
    """The link opened in a browser: a button, so a mail scanner following links
    unsubscribes nobody (RFC 8058: only the POST acts)."""
    address = request.app[OUTREACH].unsubscribes_address(request.match_info["token"])
    if address is None:
        return _page("<p>This unsubscribe link is not valid.</p>", 404)
    return _page(
        f"<p>Stop our update emails to <b>{html.escape(address)}</b>?</p>"
        '<form method="post"><button type="submit">Unsubscribe</button></form>'
    )


async def unsubscribe(request: web.Request) -> web.Response:
    """One-click unsubscribe (RFC 8058 `List-Unsubscribe=One-Click`, or the page's button)."""
    address = request.app[OUTREACH].unsubscribes_address(request.match_info["token"])
    if address is None:
        return _page("<p>This unsubscribe link is not valid.</p>", 404)
    await request.app[STORE].set_opt_out(Identity(kind=IdentityKind.EMAIL, value=address), True)
    return _page(f"<p>{html.escape(address)} will get no more update emails from us.</p>")


def openapi_paths() -> dict[str, Any]:
    """The outreach paths of the OpenAPI document (gateway/desk/reports_api.py)."""
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    accepted = {"type": "object", "required": ["id", "state", "event_id", "duplicate"],
                "properties": {"id": {"type": "string"}, "state": {"type": "string"},
                               "event_id": {"type": "string"},
                               "duplicate": {"type": "boolean"}}}  # fmt: skip
    ref = {"$ref": "#/components/schemas/Outreach"}
    date = {"type": "string", "format": "date-time"}
    return {
        "/api/v1/outreach/events": {"post": {
            "summary": "A business event to tell the customer about (stored, then sent once)",
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/OutreachEvent"}}}},
            "responses": {
                "202": {"description": "Stored: the outreach's id and state (the same event "
                        "id again answers the same outreach, and sends nothing new)",
                        "content": {"application/json": {"schema": accepted}}},
                "401": {"description": "No valid Bearer token", **error},
                "422": {"description": "Bad input: unknown type, missing data, bad customer",
                        **error},
            },
        }},
        "/api/v1/outreach/{id}": {"get": {
            "summary": "One outreach and its state",
            "parameters": [{"name": "id", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "responses": {"200": {"description": "The outreach",
                                  "content": {"application/json": {"schema": ref}}},
                          "401": {"description": "No valid Bearer token", **error},
                          "404": {"description": "No such outreach", **error}},
        }},
        "/api/v1/outreach/summary": {"get": {
            "summary": "Outreach figures of the events received in a period",
            "parameters": [{"name": n, "in": "query", "schema": date} for n in ("since", "until")],
            "responses": {"200": {"description": "The figures", "content": {"application/json": {
                "schema": {"type": "object", "properties": {
                    "since": date, "until": date,
                    "outreach": {"$ref": "#/components/schemas/OutreachFigures"}}}}}},
                "400": {"description": "A date is not ISO 8601, or since >= until", **error},
                "401": {"description": "No valid Bearer token", **error}},
        }},
    }  # fmt: skip


def openapi_schemas() -> dict[str, Any]:
    """The outreach models' JSON schemas, for the document's components."""
    out: dict[str, Any] = {}
    for model in (OutreachEvent, Outreach, OutreachFigures):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    return out


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/outreach/events", post_event)
    app.router.add_get("/api/v1/outreach/summary", summary)
    app.router.add_get("/api/v1/outreach/{id}", get_outreach)
    app.router.add_get(UNSUBSCRIBE_PATH + "{token}", unsubscribe_page)
    app.router.add_post(UNSUBSCRIBE_PATH + "{token}", unsubscribe)


__all__ = ["add_routes", "openapi_paths", "openapi_schemas", "view"]
