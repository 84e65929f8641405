"""Teams, the queues' SLA targets and the SLA timers, in the console:

- admins create, rename and delete teams and put each rep in one (or none);
- admins set each queue's SLA targets (first response, next response, resolution, in
  seconds of business hours) while the gateway runs; stored, so every node counts
  them; a queue never set (or reset) has the settings' targets;
- every rep reads the timers of the work they see (`GET /console/api/sla`), computed
  on the routing leader, which holds the queues.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import Field

from gateway.desk import targets
from gateway.desk.admin_api import with_role
from gateway.desk.org_store import QueueTargets
from gateway.desk.state import DESK
from gateway.errors import NotFoundError
from gateway.http_input import path_id
from gateway.keys import SETTINGS
from gateway.routing.api import _Body, _body
from gateway.routing.models import Rep, Role
from gateway.routing.state import ROUTING

MAX_TARGET_S = 366 * 86400.0


class TeamBody(_Body):
    name: str = Field(min_length=1, max_length=100, pattern=r"\S")


class MemberBody(_Body):
    team_id: int | None = None  # None: in no team


class TargetsBody(_Body):
    first_response_s: float | None = Field(default=None, gt=0, le=MAX_TARGET_S)
    next_response_s: float | None = Field(default=None, gt=0, le=MAX_TARGET_S)
    resolution_s: float | None = Field(default=None, gt=0, le=MAX_TARGET_S)


async def list_teams(request: web.Request, me: Rep) -> Any:
    store = request.app[DESK].ready()[0]
    return {"teams": [t.model_dump(mode="json") for t in await store.teams()]}


async def add_team(request: web.Request, me: Rep) -> Any:
    store = request.app[DESK].ready()[0]
    body: TeamBody = await _body(request, TeamBody)
    return (await store.add_team(body.name.strip())).model_dump(mode="json")


async def rename_team(request: web.Request, me: Rep) -> Any:
    store = request.app[DESK].ready()[0]
    body: TeamBody = await _body(request, TeamBody)
    team = await store.rename_team(path_id(request, "tid"), body.name.strip())
    return team.model_dump(mode="json")


async def delete_team(request: web.Request, me: Rep) -> Any:
    store = request.app[DESK].ready()[0]
    if not await store.delete_team(path_id(request, "tid")):
        raise NotFoundError("no such team")


async def set_member(request: web.Request, me: Rep) -> Any:
    """`PUT /console/api/admin/reps/{username}/team` `{"team_id": 3}` (null: none)."""
    store, _, admin = request.app[DESK].ready()
    body: MemberBody = await _body(request, MemberBody)
    username = request.match_info["username"]
    found = [r for r in await admin.list() if r.username == username]
    if not found:
        raise NotFoundError(f"no rep {username!r}")
    await store.set_team(found[0].id, body.team_id)
    return {"username": username, "team_id": body.team_id}


async def list_queues(request: web.Request, me: Rep) -> Any:
    """Every queue with the targets in force, whether an admin set them, and the
    settings' defaults (what a reset goes back to)."""
    store = request.app[DESK].ready()[0]
    settings = request.app[SETTINGS]
    policy = await targets.current(settings, store, request.app[DESK].clock())
    defaults = targets.defaults(settings)
    return {
        "queues": [
            {
                **t.model_dump(mode="json"),
                "set_in_console": q in policy.set_in_console,
                "defaults": defaults[q].model_dump(mode="json", exclude={"queue"})
                if q in defaults
                else None,
            }
            for q, t in policy.targets.items()
        ],
        "at_risk_share": policy.at_risk_share,
        "business_hours": settings.business_hours,
        "business_timezone": settings.business_timezone,
    }


def _queue(request: web.Request) -> str:
    queue = request.match_info["queue"]
    if queue not in request.app[SETTINGS].queues:
        raise NotFoundError(f"no queue {queue!r} (GATEWAY_QUEUES)")
    return queue


async def set_targets(request: web.Request, me: Rep) -> Any:
    """`PUT /console/api/admin/queues/{queue}/sla`: the three targets (null: none)."""
    store = request.app[DESK].ready()[0]
    queue = _queue(request)
    body: TargetsBody = await _body(request, TargetsBody)
    stored = QueueTargets(queue=queue, **body.model_dump())
    await store.set_queue_targets(stored, me.id)
    return stored.model_dump(mode="json")


async def reset_targets(request: web.Request, me: Rep) -> Any:
    store = request.app[DESK].ready()[0]
    await store.clear_queue_targets(_queue(request))


async def timers(request: web.Request, me: Rep) -> Any:
    """The SLA timers of the work this rep sees (desk/timers.py), from the leader."""
    front = request.app[ROUTING].ready()[0]
    return await front.run("sla_timers", {"rep_id": me.id})


def add_routes(app: web.Application) -> None:
    r = app.router
    base = "/console/api/admin"
    r.add_get("/console/api/sla", with_role(timers, Role.REP, write=False))
    r.add_get(f"{base}/teams", with_role(list_teams, Role.ADMIN, write=False))
    r.add_post(f"{base}/teams", with_role(add_team, Role.ADMIN, write=True))
    r.add_patch(f"{base}/teams/{{tid}}", with_role(rename_team, Role.ADMIN, write=True))
    r.add_delete(f"{base}/teams/{{tid}}", with_role(delete_team, Role.ADMIN, write=True))
    r.add_put(f"{base}/reps/{{username}}/team", with_role(set_member, Role.ADMIN, write=True))
    r.add_get(f"{base}/queues", with_role(list_queues, Role.ADMIN, write=False))
    r.add_put(f"{base}/queues/{{queue}}/sla", with_role(set_targets, Role.ADMIN, write=True))
    r.add_delete(f"{base}/queues/{{queue}}/sla", with_role(reset_targets, Role.ADMIN, write=True))


__all__ = ["add_routes"]
