"""The campaigns' HTTP API: for machines under `/api/v1/outreach/campaigns` (Bearer
tokens), for the console under `/console/api/outreach/campaigns` (a supervisor's or
an admin's session, CSRF on writes).

Creating one takes the CSV and the message either as `multipart/form-data` (a file
part `csv`, text parts `name`, `type` or `sms` / `email_subject` / `email_body` /
`webchat`, optional `reason`, `channel`, `rate`) or as a `text/csv` body with those
as query parameters; the console posts JSON with the CSV's text in `csv`.
"""

from __future__ import annotations

import asyncio
import json
from email import policy
from email.parser import BytesParser
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from gateway.desk.admin_api import with_role
from gateway.desk.state import DESK
from gateway.errors import ConflictError, NotFoundError
from gateway.keys import CAMPAIGNS
from gateway.outreach.campaigns import CampaignInvalid, CampaignSpec
from gateway.routing.models import Rep, Role

FIELDS = ("type", "reason", "sms", "email_subject", "email_body", "webchat", "channel")
PAGE = 200


def _json_error(cls: type[web.HTTPException], error: str, message: str, **extra: Any) -> (
    web.HTTPException
):  # fmt: skip
    return cls(text=json.dumps({"error": error, "message": message, **extra}),
               content_type="application/json")  # fmt: skip


def _invalid(problems: list[str]) -> web.HTTPException:
    return _json_error(web.HTTPUnprocessableEntity, "invalid", problems[0], problems=problems)


def _multipart(content_type: str, body: bytes) -> dict[str, bytes]:
    """The named parts of a multipart/form-data body (the stdlib's MIME parser)."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    parts: dict[str, bytes] = {}
    if not message.is_multipart():
        return parts
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            parts[name] = payload
    return parts


def spec_of(fields: dict[str, str]) -> CampaignSpec:
    """The campaign from its form fields (422 naming the field)."""
    message = {k: v for k in FIELDS if (v := fields.get(k, "").strip())}
    raw: dict[str, Any] = {"name": fields.get("name", "").strip(), "message": message}
    if fields.get("rate", "").strip():
        raw["rate"] = fields["rate"].strip()
    try:
        return CampaignSpec.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            where = ".".join(str(p) for p in err["loc"] if p != "message") or "message"
            problems.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
        raise _invalid(problems) from None


async def _form(request: web.Request) -> tuple[dict[str, str], bytes]:
    """The fields and the CSV of a campaign post (multipart or text/csv). The body is
    in memory already (gateway/http_input.py, bounded by the app's client_max_size)."""
    body = await request.read()
    if request.content_type == "multipart/form-data":
        ctype = request.headers.get("Content-Type", "")
        parts = await asyncio.to_thread(_multipart, ctype, body)  # MIME parsing: off the loop
        if "csv" not in parts:
            raise _invalid(["csv: no file part named csv"])
        raw = parts.pop("csv")
        return {k: v.decode("utf-8", "replace") for k, v in parts.items()}, raw
    if request.content_type in ("text/csv", "text/plain"):
        return dict(request.query), body
    raise _json_error(web.HTTPUnsupportedMediaType, "unsupported",
                      "send multipart/form-data (a csv file part) or a text/csv body")  # fmt: skip


async def _create(request: web.Request, fields: dict[str, str], raw: bytes,
                  by: str | None) -> web.Response:  # fmt: skip
    spec = spec_of(fields)
    campaigns = request.app[CAMPAIGNS]
    try:
        campaign = await campaigns.create(spec, raw, by)
    except CampaignInvalid as exc:
        raise _invalid(exc.problems) from None
    return web.json_response(await campaigns.progress(campaign.id), status=201)


async def _detail(request: web.Request) -> dict[str, Any]:
    campaigns = request.app[CAMPAIGNS]
    cid = request.match_info["cid"]
    try:
        after = max(0, int(request.query.get("after", "0")))
        limit = min(PAGE, max(1, int(request.query.get("limit", str(PAGE)))))
    except ValueError:
        raise _json_error(web.HTTPBadRequest, "invalid", "after and limit are numbers") from None
    body = await campaigns.progress(cid)
    body["recipients"] = await campaigns.recipients(cid, after, limit)
    return body


# ------------------------------------------------------------- machines


async def _api(request: web.Request) -> None:
    await request.app[DESK].ready()[1].require(request)


def _mapped(exc: Exception) -> web.HTTPException:
    if isinstance(exc, NotFoundError):
        return _json_error(web.HTTPNotFound, "not_found", str(exc))
    return _json_error(web.HTTPConflict, "conflict", str(exc))


async def api_create(request: web.Request) -> web.Response:
    await _api(request)
    fields, raw = await _form(request)
    return await _create(request, fields, raw, "api")


async def api_list(request: web.Request) -> web.Response:
    await _api(request)
    return web.json_response({"campaigns": await request.app[CAMPAIGNS].latest()})


async def api_get(request: web.Request) -> web.Response:
    await _api(request)
    try:
        return web.json_response(await _detail(request))
    except NotFoundError as exc:
        raise _mapped(exc) from None


async def api_act(request: web.Request) -> web.Response:
    await _api(request)
    try:
        body = await request.app[CAMPAIGNS].act(request.match_info["cid"],
                                                request.match_info["action"])  # fmt: skip
    except (NotFoundError, ConflictError) as exc:
        raise _mapped(exc) from None
    return web.json_response(body)


# -------------------------------------------------------------- console


async def console_create(request: web.Request, me: Rep) -> Any:
    raw = await request.read()
    try:
        body = json.loads(raw)
    except ValueError:
        raise _invalid(["body: not JSON"]) from None
    if not isinstance(body, dict) or not isinstance(body.get("csv"), str):
        raise _invalid(["csv: give the list's text"])
    fields = {k: str(v) for k, v in body.items() if k != "csv" and v is not None}
    return await _create(request, fields, body["csv"].encode(), me.username)


async def console_list(request: web.Request, me: Rep) -> Any:
    return {"campaigns": await request.app[CAMPAIGNS].latest()}


async def console_get(request: web.Request, me: Rep) -> Any:
    return await _detail(request)


async def console_act(request: web.Request, me: Rep) -> Any:
    return await request.app[CAMPAIGNS].act(request.match_info["cid"],
                                            request.match_info["action"])  # fmt: skip


def add_routes(app: web.Application) -> None:
    """Before the core's `/api/v1/outreach/{id}` (routes match in order)."""
    r, base, con = app.router, "/api/v1/outreach/campaigns", "/console/api/outreach/campaigns"
    r.add_post(base, api_create)
    r.add_get(base, api_list)
    r.add_get(base + "/{cid}", api_get)
    r.add_post(base + "/{cid}/{action}", api_act)
    lead = Role.SUPERVISOR
    r.add_post(con, with_role(console_create, lead, write=True))
    r.add_get(con, with_role(console_list, lead, write=False))
    r.add_get(con + "/{cid}", with_role(console_get, lead, write=False))
    r.add_post(con + "/{cid}/{action}", with_role(console_act, lead, write=True))


def openapi_paths() -> dict[str, Any]:
    """The campaign paths of the OpenAPI document."""
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    obj = {"content": {"application/json": {"schema": {"type": "object"}}}}
    text = {"type": "string"}
    form = {"type": "object", "required": ["csv", "name"], "properties": {
        "csv": {"type": "string", "format": "binary",
                "description": "UTF-8 CSV with a header: account, phone or email; optional "
                "name; the message's $fields"},
        "name": text, "type": {"type": "string", "description": "An event type of the rules"},
        "sms": text, "email_subject": text, "email_body": text, "webchat": text,
        "reason": text, "channel": {"type": "string", "enum": ["sms", "email", "webchat"]},
        "rate": {"type": "number", "description": "Messages per second (at most the global)"},
    }}  # fmt: skip
    cid = {"name": "cid", "in": "path", "required": True, "schema": text}
    return {
        "/api/v1/outreach/campaigns": {
            "post": {"summary": "A one-off notice to a list (CSV): one outreach per row, paced",
                     "requestBody": {"required": True, "content": {
                         "multipart/form-data": {"schema": form},
                         "text/csv": {"schema": {"type": "string"}}}},
                     "responses": {"201": {"description": "The campaign, running", **obj},
                                   "401": {"description": "No valid Bearer token", **error},
                                   "413": {"description": "The CSV is too large", **error},
                                   "422": {"description": "Bad rows (named) or message",
                                           **error}}},
            "get": {"summary": "The latest campaigns with their progress",
                    "responses": {"200": {"description": "The campaigns", **obj},
                                  "401": {"description": "No valid Bearer token", **error}}},
        },
        "/api/v1/outreach/campaigns/{cid}": {"get": {
            "summary": "A campaign's progress and its recipients (after, limit: by row)",
            "parameters": [cid], "responses": {
                "200": {"description": "The campaign", **obj},
                "404": {"description": "No such campaign", **error}}}},
        "/api/v1/outreach/campaigns/{cid}/{action}": {"post": {
            "summary": "pause, resume or cancel (cancel skips everyone not yet sent to)",
            "parameters": [cid, {"name": "action", "in": "path", "required": True,
                                 "schema": {"type": "string",
                                            "enum": ["pause", "resume", "cancel"]}}],
            "responses": {"200": {"description": "The campaign", **obj},
                          "404": {"description": "No such campaign", **error},
                          "409": {"description": "Not in a state the action applies to",
                                  **error}}}},
    }  # fmt: skip


__all__ = ["add_routes", "openapi_paths", "spec_of"]
