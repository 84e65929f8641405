"""The machine API of the reports: `GET /api/v1/reports/summary` and
`GET /api/v1/reports/gaps` (Bearer token, gateway/api_auth.py) and its OpenAPI
document `GET /api/v1/openapi.json`; the console's own
`GET /console/api/reports/summary` and `.../gaps` (supervisors and admins) answer
the same JSON to the reports page."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from gateway.desk import targets
from gateway.desk.cost import ConversationUsage, UsageRead, cost_section, unit_prices
from gateway.desk.extras import extras, extras_update
from gateway.desk.gaps import MAX_HANDOVERS, THRESHOLD, Gaps, gap_groups, gap_questions
from gateway.desk.report_filters import (
    CHANNEL_NAMES,
    ReportFilterError,
    ReportFilters,
    parse_filters,
)
from gateway.desk.state import DESK
from gateway.desk.store import DeskStore
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


async def filters_of(request: web.Request) -> ReportFilters:
    """The request's `channel`, `queue`, `rep` and `team` filters (400 for a bad value)."""
    store = request.app[DESK].ready()[0]

    async def rep_exists(rep_id: int) -> bool:
        return await store.get_rep(rep_id) is not None

    async def team_reps(name: str) -> list[int] | None:
        if not any(t.name == name for t in await store.teams()):
            return None
        return await store.team_rep_ids(name)

    try:
        return await parse_filters(
            request.query, queues=request.app[SETTINGS].queues, rep_exists=rep_exists,
            team_reps=team_reps,
        )  # fmt: skip
    except ReportFilterError as exc:
        raise _bad(str(exc)) from None


async def report(
    store: DeskStore, since: datetime, until: datetime, only: ReportFilters, *,
    policy: targets.SlaPolicy, rates: Mapping[str, float], currency: str, tz: tzinfo,
    now: datetime,
) -> Summary:  # fmt: skip
    """The summary with its cost section: what the API answers (bench/reports.py times
    this over 100,000 conversations)."""
    # The facts, the extra figures' GROUP BY reads (gateway/desk/extras.py) and the
    # cost section's usage, all as of one snapshot (DeskStore.report_reads).
    next_response_s = policy.of("next_response")
    facts, extra, usage = await store.report_reads(
        since, until, channels=only.channels, queues=only.queues, rep_ids=only.rep_ids,
        target_queues=set(next_response_s), prices=unit_prices(rates),
    )  # fmt: skip
    if not len(facts):
        usage = UsageRead(ConversationUsage(), {}, {})

    def figures() -> Summary:
        end_ms = int(min(until, now).timestamp() * 1000)
        more = extras(extra, facts, channels=CHANNEL_NAMES, tz=tz, next_response_s=next_response_s,
                      clock=policy.clock, end_ms=end_ms)  # fmt: skip
        summary = summarize(
            facts, since, until, now=now, first_response_s=policy.of("first_response"),
            resolution_s=policy.of("resolution"), tz=tz, clock=policy.clock,
            at_risk_share=policy.at_risk_share, next_response_late=more.next_response_late,
        )  # fmt: skip
        cost = cost_section(facts, usage, rates, currency)
        return summary.model_copy(update={"cost": cost, **extras_update(more)})

    # Off the event loop: over 100,000 conversations it takes a while.
    return await asyncio.to_thread(figures)


async def summary_of(request: web.Request, only: ReportFilters | None = None) -> Summary:
    """The summary the request asks for: its period and filters (`only`: already read)."""
    store = request.app[DESK].ready()[0]
    settings = request.app[SETTINGS]
    since, until = period(request.query)
    if only is None:
        only = await filters_of(request)
    policy = await targets.current(settings, store, request.app[DESK].clock())
    summary = await report(
        store, since, until, only, policy=policy, rates=settings.cost_rates,
        currency=settings.cost_currency, tz=ZoneInfo(settings.business_timezone),
        now=datetime.now(UTC),
    )  # fmt: skip
    outreach = await outreach_report(request, since, until)
    return summary.model_copy(update={"outreach": outreach})


async def gaps_of(request: web.Request) -> Gaps:
    """The period's help-centre gaps (gateway/desk/gaps.py)."""
    desk = request.app[DESK]
    store = desk.ready()[0]
    since, until = period(request.query)
    handovers = await store.handover_questions(since, until, MAX_HANDOVERS)
    found = gap_questions(handovers)
    vectors = await desk.gaps.embed([h.question for h in found])
    return Gaps(
        since=since.isoformat(), until=until.isoformat(),
        handed_over=len({h.conversation_id for h in handovers}), unanswered=len(found),
        threshold=THRESHOLD, groups=gap_groups(found, vectors) if found else [],
    )  # fmt: skip


async def api_gaps(request: web.Request) -> web.Response:
    _, bearer, _ = request.app[DESK].ready()
    await bearer.require(request)
    return web.json_response((await gaps_of(request)).model_dump(mode="json"))


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


def _list_param(name: str, items: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name, "in": "query", "required": False, "style": "form", "explode": True,
        "schema": {"type": "array", "items": items}, "description": description,
    }  # fmt: skip


def openapi() -> dict[str, Any]:
    """The API's OpenAPI 3.1 document (the response schema from the pydantic model)."""
    schema = Summary.model_json_schema(ref_template="#/components/schemas/{model}")
    gaps = Gaps.model_json_schema(ref_template="#/components/schemas/{model}")
    components = {"Summary": {k: v for k, v in schema.items() if k != "$defs"},
                  **schema.get("$defs", {}),
                  "Gaps": {k: v for k, v in gaps.items() if k != "$defs"},
                  **gaps.get("$defs", {}),
                  "Error": {"type": "object", "required": ["error", "message"],
                            "properties": {"error": {"type": "string"},
                                           "message": {"type": "string"}}}}  # fmt: skip
    from gateway.outreach import api as outreach_api  # imports this module (period)
    from gateway.outreach import campaign_api

    components.update(outreach_api.openapi_schemas())
    date = {"type": "string", "format": "date-time"}
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    parameters = [
        {"name": "since", "in": "query", "schema": date,
         "description": "ISO 8601 start (inclusive; no offset: UTC). "
                        "Default: 7 days before until."},
        {"name": "until", "in": "query", "schema": date,
         "description": "ISO 8601 end (exclusive). Default: now."},
    ]  # fmt: skip
    refused = {
        "400": {"description": "A date is not ISO 8601, or since >= until", **error},
        "401": {"description": "No valid Bearer token", **error},
    }
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
                        _list_param(
                            "channel",
                            {"type": "string", "enum": list(CHANNEL_NAMES)},
                            "Only conversations on this channel (repeat it, or separate "
                            "values by commas, for several).",
                        ),
                        _list_param(
                            "queue",
                            {"type": "string"},
                            "Only conversations in this queue (a name of GATEWAY_QUEUES; "
                            "repeat or comma-separate for several).",
                        ),
                        _list_param(
                            "rep",
                            {"type": "integer", "minimum": 1},
                            "Only conversations this rep (by id) took at some point; every "
                            "figure of such a conversation counts (repeat or comma-separate "
                            "for several reps).",
                        ),
                        _list_param(
                            "team",
                            {"type": "string"},
                            "Only conversations a rep of this team (by name, as an admin "
                            "created it) took at some point; with `rep`, only those reps of "
                            "the team (repeat or comma-separate for several teams).",
                        ),
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
                            "description": "A date is not ISO 8601, since >= until, or a "
                            "filter names an unknown channel, queue or rep",
                            **error,
                        },
                        "401": {"description": "No valid Bearer token", **error},
                    },
                }
            },
            "/api/v1/reports/gaps": {
                "get": {
                    "summary": "Help-centre gaps: the questions the agent could not answer, "
                    "grouped by similarity, of the conversations started in a period",
                    "parameters": parameters,
                    "responses": {
                        "200": {
                            "description": "The groups, largest first",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Gaps"}
                                }
                            },
                        },
                        **refused,
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
    app.router.add_get("/api/v1/reports/gaps", api_gaps)
    app.router.add_get("/api/v1/openapi.json", api_openapi)
