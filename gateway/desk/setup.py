"""`setup_desk(app)`: rep admin, API tokens, the reports API and who may read a
closed conversation (called by `create_app`, after `setup_routing`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

from aiohttp import web

from gateway.api_auth import BearerAuth
from gateway.bus import Data
from gateway.desk import admin_api, canned, labels_api, org_api, reports_api, targets
from gateway.desk.admin import RepAdmin, known_skills
from gateway.desk.reopen import reopen
from gateway.desk.sla import BusinessClock
from gateway.desk.state import DESK, DeskState
from gateway.desk.store import DeskStore
from gateway.desk.take import take
from gateway.desk.timers import desk_timers
from gateway.errors import ConfigError, NotFoundError
from gateway.keys import SETTINGS, STORE
from gateway.protocols import Store
from gateway.routing.models import Rep
from gateway.routing.setup import open_routing_store
from gateway.routing.state import ROUTING


def open_desk_store(store: Store) -> DeskStore:
    """The desk's reads and writes on the configured store."""
    from gateway.store.sqlite import SqliteStore

    if isinstance(store, SqliteStore):
        from gateway.store.sqlite_desk import SqliteDeskStore

        return SqliteDeskStore(store)
    from gateway.store.postgres import PostgresStore

    if isinstance(store, PostgresStore):
        from gateway.store.pg_desk import PostgresDeskStore

        return PostgresDeskStore(store)
    raise ConfigError(f"GATEWAY_DATABASE_URL: no desk store for {type(store).__name__}")


def setup_desk(app: web.Application) -> None:
    app[DESK] = DeskState()
    reports_api.add_routes(app)
    admin_api.add_routes(app)
    canned.add_routes(app)
    labels_api.add_routes(app)
    org_api.add_routes(app)
    app.cleanup_ctx.append(_desk_ctx)


async def _desk_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    state = app[DESK]
    store = open_desk_store(app[STORE])
    routing = app[ROUTING]
    front, auth, _ = routing.ready()
    service = routing.service
    assert service is not None

    async def refresh(_: Data) -> Data:
        return {"changed": await service.router.refresh_reps()}

    front.register("refresh_reps", refresh)

    async def reopened(d: Data) -> Data:
        rep = await store.get_rep(int(d["rep_id"]))
        if rep is None:
            raise NotFoundError("no such rep")
        conv = await reopen(service, store, rep, int(d["conversation_id"]))
        return conv.model_dump(mode="json", exclude={"agent_state"})

    front.register("reopen", reopened)  # on the routing leader, which holds the queues

    async def taken(d: Data) -> Data:
        conv = await take(service, int(d["entry_id"]), int(d["rep_id"]),
                          by_lead=bool(d["by_lead"]))  # fmt: skip
        return conv.model_dump(mode="json", exclude={"agent_state"})

    front.register("take", taken)

    async def sla_timers(d: Data) -> Data:
        policy = await targets.current(settings, store, state.clock())
        return await desk_timers(service, store, policy, int(d["rep_id"]), datetime.now(UTC))

    front.register("sla_timers", sla_timers)  # on the leader, which holds the queues

    async def refreshed(rep: Rep) -> None:
        auth.forget_rep(rep.id)  # other nodes read it back within auth.RECHECK_S
        await front.run("refresh_reps", {})

    async def token_id(digest: str) -> int | None:
        token = await store.token_by_hash(digest)
        return None if token is None else token.id

    async def worked_it(rep_id: int, conversation_id: int) -> bool:
        """A closed conversation stays readable to the reps who took it and to
        supervisors and admins (routing's own rules cover open work)."""
        rep = await store.get_rep(rep_id)
        if rep is None or rep.disabled:
            return False
        return rep.role.supervises or await store.worked_on(rep_id, conversation_id)

    static = settings.api_token.get_secret_value() if settings.api_token else None
    state.store = store
    state.sla_clock = BusinessClock.of(settings.business_hours, settings.business_timezone)
    state.bearer = BearerAuth(static, token_id)
    state.admin = RepAdmin(open_routing_store(app[STORE]), known_skills(settings.queues),
                           refreshed)  # fmt: skip
    views = routing.views
    if views is not None:
        views.viewers.append(worked_it)
    yield
    if views is not None and worked_it in views.viewers:
        views.viewers.remove(worked_it)
