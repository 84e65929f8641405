"""The machine API of the reports: `GET /api/v1/reports/summary` (Bearer token,
gateway/api_auth.py) and its OpenAPI document `GET /api/v1/openapi.json`; the
console's own `GET /console/api/reports/summary` (supervisors and admins) answers
the same JSON to the reports page."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from gateway.desk.state import DESK
from gateway.desk.summary import Summary, summarize
from gateway.keys import SETTINGS
from gateway.outreach.models import OutreachReport

DEFAULT_PERIOD = timedelta(days=7)
MAX_PERIOD = timedelta(days=366 * 2)


def _bad(message: str) -> web.HTTPBadRequest:
    body = json.dumps({"error": "invalid", "message": message})
    return web.HTTPBadRequest(text=body, content_type="application/json")


def _when(query: Any, name: str) -> datetime | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise _bad(f"{name}: not an ISO 8601 date or time: {raw[:40]!r}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def period(query: Any) -> tuple[datetime, datetime]:
    """`since` and `until` (ISO 8601; without an offset: UTC). Defaults: the last 7 days."""
    until = _when(query, "until") or datetime.now(UTC)
    since = _when(query, "since") or until - DEFAULT_PERIOD
    if since >= until:
        raise _bad("since must be before until")
    if until - since > MAX_PERIOD:
        raise _bad("the period may be at most two years")
    return since, until


async def summary_of(request: web.Request) -> Summary:
    store = request.app[DESK].ready()[0]
    settings = request.app[SETTINGS]
    since, until = period(request.query)
    facts = await store.facts(since, until)
    summary = summarize(
        facts, since, until, now=datetime.now(UTC),
        first_response_s=settings.sla_first_response_s, resolution_s=settings.sla_resolution_s,
        tz=ZoneInfo(settings.business_timezone),
    )  # fmt: skip
    return summary.model_copy(update={"outreach": await outreach_report(request, since, until)})


async def outreach_report(request: web.Request, since: datetime, until: datetime) -> (
    OutreachReport | None
):  # fmt: skip
    """The summary's outreach section: the outreach figures of the period and the
    calls it saved (None when the app has no outreach)."""
    from gateway.keys import CAMPAIGNS, OUTREACH  # the outreach parts import this module

    service, campaigns = request.app.get(OUTREACH), request.app.get(CAMPAIGNS)
    if service is None or campaigns is None:
        return None
    figures = await service.outreach.figures(since, until)
    days = request.app[SETTINGS].outreach_saved_days
    window_ms = int(days * 86_400_000)
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    period_ms = (int(since.timestamp() * 1000), int(until.timestamp() * 1000))
    saved, of = await campaigns.store.saved(*period_ms, window_ms, now_ms)
    return OutreachReport(**figures.model_dump(), calls_saved=saved, calls_saved_of=of,
                          saved_after_days=days)  # fmt: skip


async def api_summary(request: web.Request) -> web.Response:
    _, bearer, _ = request.app[DESK].ready()
    await bearer.require(request)
    summary = await summary_of(request)
    return web.json_response(summary.model_dump(mode="json"))


def openapi() -> dict[str, Any]:
    """The API's OpenAPI 3.1 document (the response schema from the pydantic model)."""
    schema = Summary.model_json_schema(ref_template="#/components/schemas/{model}")
    components = {"Summary": {k: v for k, v in schema.items() if k != "$defs"},
                  **schema.get("$defs", {}),
                  "Error": {"type": "object", "required": ["error", "message"],
                            "properties": {"error": {"type": "string"},
                                           "message": {"type": "string"}}}}  # fmt: skip
    from gateway.outreach import api as outreach_api  # imports this module (period)
    from gateway.outreach import campaign_api

    components.update(outreach_api.openapi_schemas())
    date = {"type": "string", "format": "date-time"}
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Support gateway API", "version": "1"},
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "GATEWAY_API_TOKEN, or a token an admin created in the console",
                }
            },
            "schemas": components,
        },
        "paths": {
            "/api/v1/reports/summary": {
                "get": {
                    "summary": "Figures of the conversations started in a period",
                    "parameters": [
                        {
                            "name": "since",
                            "in": "query",
                            "schema": date,
                            "description": "ISO 8601 start (inclusive; no offset: UTC). "
                            "Default: 7 days before until.",
                        },
                        {
                            "name": "until",
                            "in": "query",
                            "schema": date,
                            "description": "ISO 8601 end (exclusive). Default: now.",
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "The summary",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Summary"}
                                }
                            },
                        },
                        "400": {
                            "description": "A date is not ISO 8601, or since >= until",
                            **error,
                        },
                        "401": {"description": "No valid Bearer token", **error},
                    },
                }
            },
            **outreach_api.openapi_paths(),
            **campaign_api.openapi_paths(),
        },
    }


async def api_openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi())


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/reports/summary", api_summary)
    app.router.add_get("/api/v1/openapi.json", api_openapi)
