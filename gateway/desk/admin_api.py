"""The console's admin and reports API (`/console/api/admin/...`,
`/console/api/reports/...`): a rep session like the rest of the console (CSRF on
writes), plus a role: supervisors and admins read the reports; admins manage
reps (add, change, skills, role, disable, reset password) and API tokens."""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import Field, ValidationError

from gateway.api_auth import new_token
from gateway.bus import RemoteError
from gateway.desk.admin import AdminError, first_error
from gateway.desk.profile import profile
from gateway.desk.report_filters import CHANNEL_NAMES
from gateway.desk.reports_api import filters_of, gaps_of, summary_of
from gateway.desk.state import DESK
from gateway.desk.store import SearchQuery
from gateway.desk.summary import csv_rows
from gateway.errors import ConflictError, NotFoundError
from gateway.http_input import path_id
from gateway.keys import BACKEND, SETTINGS, STORE
from gateway.routing.api import _Body, _body, _error
from gateway.routing.models import Rep, Role
from gateway.routing.state import ROUTING

_RANK = {Role.REP: 0, Role.SUPERVISOR: 1, Role.ADMIN: 2}
Handler = Callable[[web.Request, Rep], Awaitable[Any]]


class AddRepBody(_Body):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1000)
    display_name: str | None = Field(default=None, max_length=200)
    skills: list[str] = Field(default_factory=lambda: ["general"], max_length=50)
    role: Role = Role.REP
    phone: str | None = Field(default=None, max_length=40)
    max_text: int | None = None
    max_calls: int | None = None


class UpdateRepBody(_Body):
    display_name: str | None = Field(default=None, max_length=200)
    skills: list[str] | None = Field(default=None, max_length=50)
    role: Role | None = None
    phone: str | None = Field(default=None, max_length=40)
    max_text: int | None = None
    max_calls: int | None = None
    disabled: bool | None = None
    password: str | None = Field(default=None, min_length=1, max_length=1000)


class TokenBody(_Body):
    name: str = Field(min_length=1, max_length=100)


def with_role(
    handler: Handler, need: Role, *, write: bool
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A console session (CSRF on writes) of a rep with at least role `need` (403)."""

    async def wrapped(request: web.Request) -> web.Response:
        _, auth, _ = request.app[ROUTING].ready()
        store = request.app[DESK].ready()[0]
        session = await auth.require(request, write=write)
        rep = await store.get_rep(session.rep_id)
        if rep is None or rep.disabled or _RANK[rep.role] < _RANK[need]:
            return _error(403, "forbidden", f"this needs the {need.value} role")
        try:
            result = await handler(request, rep)
        except AdminError as exc:
            return _error(400, "invalid", str(exc))
        except NotFoundError as exc:
            return _error(404, "not_found", str(exc))
        except ConflictError as exc:
            return _error(409, "conflict", str(exc))
        if result is None:
            return web.Response(status=204)
        if isinstance(result, web.Response):
            return result
        return web.json_response(result)

    return wrapped


def _rep_json(rep: Rep) -> dict[str, Any]:
    return rep.model_dump(mode="json", exclude={"last_busy_at"})


async def list_reps(request: web.Request, me: Rep) -> Any:
    admin = request.app[DESK].ready()[2]
    return {"reps": [_rep_json(r) for r in await admin.list()], "skills": list(admin.skills),
            "roles": [r.value for r in Role]}  # fmt: skip


async def add_rep(request: web.Request, me: Rep) -> Any:
    admin = request.app[DESK].ready()[2]
    body: AddRepBody = await _body(request, AddRepBody)
    rep = await admin.add(
        body.username, body.password, display_name=body.display_name, skills=body.skills,
        role=body.role, phone=body.phone, max_text=body.max_text, max_calls=body.max_calls,
    )  # fmt: skip
    return _rep_json(rep)


async def update_rep(request: web.Request, me: Rep) -> Any:
    admin = request.app[DESK].ready()[2]
    body: UpdateRepBody = await _body(request, UpdateRepBody)
    username = request.match_info["username"]
    if username == me.username and (body.disabled or (body.role not in (None, Role.ADMIN))):
        raise ConflictError("an admin cannot disable or demote themselves (ask another admin)")
    rep = await admin.update(
        username, display_name=body.display_name, skills=body.skills, role=body.role,
        phone=body.phone, max_text=body.max_text, max_calls=body.max_calls,
        disabled=body.disabled, password=body.password,
    )  # fmt: skip
    return _rep_json(rep)


async def list_tokens(request: web.Request, me: Rep) -> Any:
    store = request.app[DESK].ready()[0]
    return {"tokens": [t.model_dump(mode="json") for t in await store.tokens()]}


async def add_token(request: web.Request, me: Rep) -> Any:
    store = request.app[DESK].ready()[0]
    body: TokenBody = await _body(request, TokenBody)
    token, digest = new_token()
    stored = await store.add_token(body.name, digest, me.id)
    # The only time the token is shown: the store keeps its hash.
    return {**stored.model_dump(mode="json"), "token": token}


async def revoke_token(request: web.Request, me: Rep) -> Any:
    store = request.app[DESK].ready()[0]
    token_id = path_id(request, "tid")
    if not await store.revoke_token(token_id):
        raise NotFoundError(f"no live token {token_id}")


async def reports_summary(request: web.Request, me: Rep) -> Any:
    return (await summary_of(request)).model_dump(mode="json")


async def reports_gaps(request: web.Request, me: Rep) -> Any:
    return (await gaps_of(request)).model_dump(mode="json")


async def reports_csv(request: web.Request) -> web.Response:
    """The summary as a CSV download (figure,value), for supervisors and admins."""
    return await with_role(_csv, Role.SUPERVISOR, write=False)(request)


async def reports_filters(request: web.Request, me: Rep) -> Any:
    """What the reports page offers to filter by: channels, queues, reps (by id), teams."""
    admin = request.app[DESK].ready()[2]
    reps = [{"id": r.id, "name": r.display_name, "username": r.username}
            for r in await admin.list()]  # fmt: skip
    teams = [t.name for t in await request.app[DESK].ready()[0].teams()]
    return {"channels": list(CHANNEL_NAMES), "queues": sorted(request.app[SETTINGS].queues),
            "reps": reps, "teams": teams}  # fmt: skip


async def _csv(request: web.Request, me: Rep) -> Any:
    only = await filters_of(request)
    summary = await summary_of(request, only)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(("figure", "value"))
    # The filters first: a file read later says what it counted.
    writer.writerows((f"filter.{name}", value) for name, value in only.as_query().items())
    writer.writerows(csv_rows(summary))
    day = f"{summary.since:%Y%m%d}-{summary.until:%Y%m%d}"
    return web.Response(
        text=out.getvalue(), content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="report-{day}.csv"'},
    )  # fmt: skip


async def search(request: web.Request, me: Rep) -> Any:
    """`GET /console/api/conversations?q=&customer=&channel=&state=&queue=&label=&since=&until=`:
    closed ones included; a rep finds the conversations they took, supervisors all."""
    store = request.app[DESK].ready()[0]
    params = {k: v for k, v in request.query.items() if v != ""}
    fields: dict[str, object] = {"text": params.pop("q", None), **params}
    if not me.role.supervises:
        fields["worked_by"] = me.id  # whatever the request said
    try:
        query = SearchQuery.model_validate(fields)
    except ValidationError as exc:
        raise AdminError(first_error(exc)) from exc
    hits = await store.search(query)
    labels = await store.labels_of([h.id for h in hits])
    hits = [h.model_copy(update={"labels": tuple(labels.get(h.id, ()))}) for h in hits]
    return {"conversations": [h.model_dump(mode="json") for h in hits]}


async def reopen(request: web.Request, me: Rep) -> Any:
    """Reopen a closed conversation the rep worked (a supervisor: any): it waits in its
    queue again. 404 for one they may not see, 409 when not closed."""
    store = request.app[DESK].ready()[0]
    front = request.app[ROUTING].ready()[0]
    cid = path_id(request, "cid")
    if not (me.role.supervises or await store.worked_on(me.id, cid)):
        raise NotFoundError(f"no conversation {cid} for you")
    try:
        return await front.run("reopen", {"rep_id": me.id, "conversation_id": cid})
    except RemoteError as exc:  # the leader refused (its ConflictError), or is away
        return _error(409, "conflict", str(exc))


async def contact(request: web.Request, me: Rep) -> Any:
    """The profile of a conversation's customer, for a rep who may see the conversation."""
    store = request.app[DESK].ready()[0]
    front = request.app[ROUTING].ready()[0]
    cid = path_id(request, "cid")
    await front.conversation(me.id, cid)  # NotFoundError unless this rep may see it
    return await profile(request.app[STORE], store, request.app.get(BACKEND), cid)


class AssignBody(_Body):
    rep_id: int


async def take_waiting(request: web.Request, me: Rep) -> Any:
    """A rep takes a waiting conversation of a queue they serve (held by them at once)."""
    return await _take(request, me.id, by_lead=False)


async def assign_waiting(request: web.Request, me: Rep) -> Any:
    """A supervisor gives a waiting conversation to a rep (held by that rep at once)."""
    body: AssignBody = await _body(request, AssignBody)
    return await _take(request, body.rep_id, by_lead=True)


async def _take(request: web.Request, rep_id: int, *, by_lead: bool) -> Any:
    front = request.app[ROUTING].ready()[0]
    entry_id = path_id(request, "eid")
    data = {"entry_id": entry_id, "rep_id": rep_id, "by_lead": by_lead}
    try:
        return await front.run("take", data)
    except RemoteError as exc:  # the leader refused (its Conflict/NotFound), or is away
        return _error(409, "conflict", str(exc))


async def whoami(request: web.Request, me: Rep) -> Any:
    return {"role": me.role.value}


def add_routes(app: web.Application) -> None:
    r = app.router
    base = "/console/api/admin"
    r.add_get("/console/api/role", with_role(whoami, Role.REP, write=False))
    r.add_get("/console/api/conversations", with_role(search, Role.REP, write=False))
    r.add_post("/console/api/waiting/{eid}/take", with_role(take_waiting, Role.REP, write=True))
    r.add_post("/console/api/waiting/{eid}/assign",
               with_role(assign_waiting, Role.SUPERVISOR, write=True))  # fmt: skip
    r.add_post("/console/api/conversations/{cid}/reopen", with_role(reopen, Role.REP, write=True))
    r.add_get("/console/api/conversations/{cid}/profile", with_role(contact, Role.REP, write=False))
    r.add_get(f"{base}/reps", with_role(list_reps, Role.ADMIN, write=False))
    r.add_post(f"{base}/reps", with_role(add_rep, Role.ADMIN, write=True))
    r.add_patch(f"{base}/reps/{{username}}", with_role(update_rep, Role.ADMIN, write=True))
    r.add_get(f"{base}/tokens", with_role(list_tokens, Role.ADMIN, write=False))
    r.add_post(f"{base}/tokens", with_role(add_token, Role.ADMIN, write=True))
    r.add_delete(f"{base}/tokens/{{tid}}", with_role(revoke_token, Role.ADMIN, write=True))
    r.add_get("/console/api/reports/summary",
              with_role(reports_summary, Role.SUPERVISOR, write=False))  # fmt: skip
    r.add_get("/console/api/reports/summary.csv", reports_csv)
    r.add_get("/console/api/reports/gaps", with_role(reports_gaps, Role.SUPERVISOR, write=False))
    r.add_get("/console/api/reports/filters",
              with_role(reports_filters, Role.SUPERVISOR, write=False))  # fmt: skip
