"""`setup_outreach(app)`: the outreach API routes and the service with its sender loop
(called by `create_app`, after the channels and the desk)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from gateway.errors import ConfigError
from gateway.keys import (
    BACKEND,
    CAMPAIGNS,
    CHANNELS,
    DISPATCHER,
    OUTBOUND_CALLER,
    OUTBOX,
    OUTREACH,
    SECRET_KEY,
    SETTINGS,
    STORE,
)
from gateway.models import ChannelKind, Customer
from gateway.outreach import api, campaign_api
from gateway.outreach.caller import OutboundCaller
from gateway.outreach.campaign_service import Campaigns
from gateway.outreach.campaign_store import CampaignStore
from gateway.outreach.respect import Unsubscribes
from gateway.outreach.rules import Rules
from gateway.outreach.service import OutreachService
from gateway.outreach.store import OutreachStore
from gateway.protocols import Store


def open_outreach_store(store: Store) -> OutreachStore:
    """The outreach rows on the configured store."""
    from gateway.store.sqlite import SqliteStore

    if isinstance(store, SqliteStore):
        from gateway.outreach.sqlite_store import SqliteOutreachStore

        return SqliteOutreachStore(store)
    from gateway.store.postgres import PostgresStore

    if isinstance(store, PostgresStore):
        from gateway.outreach.pg_store import PostgresOutreachStore

        return PostgresOutreachStore(store)
    raise ConfigError(f"GATEWAY_DATABASE_URL: no outreach store for {type(store).__name__}")


def open_campaign_store(store: Store) -> CampaignStore:
    """The campaigns (and the send pace) on the configured store."""
    from gateway.store.sqlite import SqliteStore

    if isinstance(store, SqliteStore):
        from gateway.outreach.campaign_sqlite import SqliteCampaignStore

        return SqliteCampaignStore(store)
    from gateway.store.postgres import PostgresStore

    if isinstance(store, PostgresStore):
        from gateway.outreach.campaign_pg import PostgresCampaignStore

        return PostgresCampaignStore(store)
    raise ConfigError(f"GATEWAY_DATABASE_URL: no campaign store for {type(store).__name__}")


def setup_outreach(app: web.Application) -> None:
    rules = Rules(app[SETTINGS].outreach_rules_dir)  # a bad rules file fails here, early
    campaign_api.add_routes(app)  # before api's /api/v1/outreach/{id}
    api.add_routes(app)
    app.cleanup_ctx.append(lambda a: _outreach_ctx(a, rules))
    app.on_startup.append(_start)
    app.on_shutdown.insert(0, _stop)


def _online(app: web.Application) -> Any:
    """Whether a customer has a web chat open on this node."""
    channel = app[CHANNELS].get(ChannelKind.WEBCHAT)
    hub = getattr(channel, "hub", None)

    def online(customer: Customer) -> bool:
        return bool(hub.sessions_for(customer)) if hub is not None else False

    return online


async def _outreach_ctx(app: web.Application, rules: Rules) -> AsyncIterator[None]:
    settings = app[SETTINGS]

    def caller() -> OutboundCaller | None:
        return app.get(OUTBOUND_CALLER)

    campaigns = open_campaign_store(app[STORE])
    service = OutreachService(
        app[STORE], open_outreach_store(app[STORE]), app[OUTBOX], rules,
        backend=app.get(BACKEND),  # type: ignore[arg-type]
        unsubscribes=Unsubscribes(app[SECRET_KEY], settings.public_url),
        caller=caller, online=_online(app),
        quiet_hours=settings.outreach_quiet_hours, fallback_tz=settings.business_timezone,
        max_per_day=settings.outreach_max_per_day, lease_s=settings.outreach_lease_s,
        call_timeout_s=settings.outreach_call_timeout_s, poll_s=settings.outreach_poll_s,
        campaigns=campaigns, send_rate=settings.outreach_send_rate,
    )  # fmt: skip
    app[OUTREACH] = service
    placed = app.get(OUTBOUND_CALLER)
    if placed is not None:  # the phone side reports each call's outcome here
        placed.outcome_hook = service.call_outcome
    app[CAMPAIGNS] = Campaigns(campaigns, rules, service.wake)
    email = app[CHANNELS].get(ChannelKind.EMAIL)
    if email is not None and hasattr(email, "extras"):
        email.extras = service.mail_extras
    yield


async def _start(app: web.Application) -> None:
    # After the outbox started (gateway.app `_recover`): a single node first takes back
    # the claims of the process before it.
    await app[OUTREACH].start(single_node=app[DISPATCHER].gate is None)


async def _stop(app: web.Application) -> None:
    service = app.get(OUTREACH)
    if service is not None:
        await service.stop()


__all__ = ["open_campaign_store", "open_outreach_store", "setup_outreach"]
