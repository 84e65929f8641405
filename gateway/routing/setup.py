"""`setup_routing(app)`: queues, the rep console API and ratings (called by `create_app`).

At start-up (a `cleanup_ctx` after the store, the dispatcher and the channels)
the node that leads routing (every node alone; one of several, routing/leader.py)
rebuilds the router from the store, so queued work, pending offers and approvals
survive a restart. Every node registers `RoutingFront` with the dispatcher and the
phone channel: handovers enter the queues, customer messages the agent stays
silent on, approvals it asks for and a call's transfer steps reach the consoles,
and a call's warm transfer rings the reps routing offers it to (routing/calls.py).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, cast

from aiohttp import web

from agent.backend import Backend
from gateway.errors import ConfigError, GatewayError
from gateway.keys import (
    BACKEND,
    BUS,
    CHANNELS,
    DISPATCHER,
    METRICS,
    OUTBOX,
    SECRET_KEY,
    SETTINGS,
    STORE,
)
from gateway.models import ChannelKind, Customer
from gateway.protocols import Store
from gateway.routing import api
from gateway.routing.approvals import ConsoleApprovals
from gateway.routing.auth import ConsoleAuth
from gateway.routing.call_routing import CallRouting
from gateway.routing.calls import CallOffers
from gateway.routing.feed import LocalFeed, SharedFeed
from gateway.routing.front import RoutingFront
from gateway.routing.hub import ConsoleHub
from gateway.routing.intake import Intake
from gateway.routing.leader import Leadership
from gateway.routing.page import add_page_routes
from gateway.routing.rating import Ratings, rate_form, rate_preflight, rate_submit
from gateway.routing.reach import AccountFacts, AccountLookup
from gateway.routing.router import Router
from gateway.routing.service import RoutingService
from gateway.routing.state import ROUTING, RoutingState
from gateway.routing.store import RoutingStore
from gateway.routing.throttle import LoginThrottle, open_login_log
from gateway.routing.views import ConsoleViews
from gateway.routing.ws import console_socket
from gateway.secrets import derive_key
from gateway.settings import Settings

if TYPE_CHECKING:
    from channels.phone.channel import TransferListener

log = logging.getLogger(__name__)


def open_routing_store(store: Store) -> RoutingStore:
    """The routing tables of the configured store (same database, same writer)."""
    from gateway.store.sqlite import SqliteStore
    from gateway.store.sqlite_routing import SqliteRoutingStore

    if isinstance(store, SqliteStore):
        return SqliteRoutingStore(store)
    from gateway.store.pg_routing import PostgresRoutingStore
    from gateway.store.postgres import PostgresStore

    if isinstance(store, PostgresStore):
        return PostgresRoutingStore(store)
    raise ConfigError(f"GATEWAY_DATABASE_URL: no routing store for {type(store).__name__}")


def setup_routing(app: web.Application) -> None:
    """Register the console routes and the routing start-up on `app`."""
    app[ROUTING] = RoutingState(hub=ConsoleHub())
    api.add_routes(app)
    add_page_routes(app)
    app.router.add_get("/console/ws", console_socket)
    app.router.add_get("/rate/{token}", rate_form)
    app.router.add_post("/rate/{token}", rate_submit)
    app.router.add_route("OPTIONS", "/rate/{token}", rate_preflight)  # the widget's CORS
    app.cleanup_ctx.append(_routing_ctx)
    app.on_shutdown.append(_close_consoles)


def _account_lookup(app: web.Application) -> AccountLookup | None:
    """The account's tier (queue priority) and its contact on record (a signed-in
    customer told nobody is free may continue by phone or email the gateway lacks)."""
    backend = app.get(BACKEND)
    get_account = getattr(backend, "get_account", None)
    if get_account is None:
        return None

    async def account_of(customer: Customer) -> AccountFacts | None:
        if not customer.account_ref:
            return None
        try:
            account = await get_account(customer.account_ref)
        except Exception as exc:  # the backend's own errors; routing does without them
            raise GatewayError(f"backend: {exc}") from exc
        if account is None:
            return None
        return AccountFacts(
            tier=getattr(account, "tier", None),
            phone=getattr(account, "phone", None) or None,
            email=getattr(account, "email", None) or None,
        )

    return account_of


def _refund_backend(app: web.Application) -> Backend | None:
    backend = app.get(BACKEND)
    if callable(getattr(backend, "refund_order", None)):
        return cast(Backend, backend)  # duck-typed: agent/backend.py Backend
    return None


def _approvals_queue(settings: Settings) -> str | None:
    queue = settings.approvals_queue.strip()
    if queue and queue not in settings.queues:
        log.warning(
            "GATEWAY_APPROVALS_QUEUE=%s is not one of GATEWAY_QUEUES: only the rep holding a"
            " conversation can decide its approvals",
            queue,
        )
        return None
    return queue or None


def _transfer_listeners(phone: object) -> list[TransferListener] | None:
    """The phone channel's warm-transfer listeners (under its fan-out wrapper on
    several nodes), or None without a phone channel."""
    phone = getattr(phone, "local", phone)
    listeners: list[TransferListener] | None = getattr(phone, "transfer_listeners", None)
    return listeners


def _attach_calls(phone: object, calls: CallRouting | None) -> None:
    """Hand the phone channel (if any) routing's side of its warm transfers."""
    attach = getattr(getattr(phone, "local", phone), "attach_routing", None)
    if attach is not None:
        attach(calls)


async def _routing_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    state = app[ROUTING]
    store = app[STORE]
    channels = app[CHANNELS]
    bus = app[BUS]
    routing = open_routing_store(store)
    master = app[SECRET_KEY]
    ratings = Ratings(routing, derive_key(master, "rating"), settings.public_url,
                      settings.rating_window_hours)  # fmt: skip
    feed: LocalFeed | SharedFeed = (
        SharedFeed(state.hub, bus, routing) if bus.shared else LocalFeed(state.hub)
    )
    router = Router(settings, store, routing, feed, app[METRICS])
    intake = Intake(router, channels, app[OUTBOX], account_of=_account_lookup(app))
    router.on_orphan.append(intake.handover)
    service = RoutingService(
        router, intake, store, channels,
        rating_prompt=ratings.prompt, rating_control=ratings.show_control,
    )  # fmt: skip
    webchat = channels.get(ChannelKind.WEBCHAT)
    request_rating = getattr(webchat, "request_rating", None)
    if request_rating is not None:
        ratings.widgets[ChannelKind.WEBCHAT] = request_rating
    state.store, state.ratings, state.service = routing, ratings, service
    views = ConsoleViews(service, routing)
    approvals = ConsoleApprovals(
        service, views, routing, channels, _refund_backend(app), _approvals_queue(settings)
    )
    views.viewers.append(approvals.approver_sees)
    front = RoutingFront(bus, service, intake, state.hub, views, approvals,
                         away_after_s=settings.console_away_after_s)  # fmt: skip
    call_offers = CallOffers(service, intake, bus)  # a call's transfer: phones ring as offers
    call_offers.register(front)
    calls = CallRouting(front, bus)
    state.views, state.approvals = views, approvals
    state.front, state.feed = front, feed
    state.auth = ConsoleAuth(
        routing,
        derive_key(master, "console-session"),
        max_age_s=settings.console_session_hours * 3600,
        # A Secure cookie is never sent back over plain http (except by browsers to
        # localhost), so it is Secure whenever the gateway is served over https.
        secure=settings.public_url.startswith("https://"),
        throttle=LoginThrottle(
            open_login_log(store), per_address=settings.console_login_failures_per_address
        ),
    )
    dispatcher = app[DISPATCHER]
    approvals.gate = dispatcher.gate  # PostgreSQL: decisions hold the conversation's turn lock
    leadership = Leadership(app, router, front, settings.cluster_recover_after_s)
    if isinstance(feed, SharedFeed):
        await feed.start()
    await leadership.start()
    dispatcher.handover_hooks.append(front.handover)
    dispatcher.held_hooks.append(front.held_message)
    dispatcher.typing_hooks.append(front.customer_typing)
    dispatcher.turn_hooks.append(front.turn)
    # A call's warm transfer (ringing, briefing, connected...) shows on the consoles;
    # the node holding the call tells the leader, which knows who sees it.
    call_steps = _transfer_listeners(channels.get(ChannelKind.PHONE))
    if call_steps is not None:
        call_steps.append(front.call_step)
    phone = channels.get(ChannelKind.PHONE)
    _attach_calls(phone, calls)
    sms_inner = dispatcher.responders.get(ChannelKind.SMS)
    dispatcher.responders[ChannelKind.SMS] = ratings.sms_responder(sms_inner)
    try:
        yield
    finally:
        dispatcher.handover_hooks.remove(front.handover)
        dispatcher.held_hooks.remove(front.held_message)
        dispatcher.typing_hooks.remove(front.customer_typing)
        dispatcher.turn_hooks.remove(front.turn)
        if call_steps is not None:
            call_steps.remove(front.call_step)
        _attach_calls(phone, None)
        if sms_inner is not None:
            dispatcher.responders[ChannelKind.SMS] = sms_inner
        else:
            dispatcher.responders.pop(ChannelKind.SMS, None)
        await front.stop()
        await call_offers.stop()
        await service.stop()
        await leadership.stop()
        if isinstance(feed, SharedFeed):
            await feed.stop()


async def _close_consoles(app: web.Application) -> None:
    app[ROUTING].hub.close_all()
