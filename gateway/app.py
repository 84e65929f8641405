"""The one place that wires the gateway: `create_app(settings)`.

Resources (store, business backend, agent, dispatcher) are opened in
`cleanup_ctx` order and closed in reverse; everything shared lives under typed
`web.AppKey`s, never in module globals.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from gateway.dispatch import Dispatcher
from gateway.http_input import bad_body_middleware
from gateway.keys import (
    BACKEND,
    BRAIN,
    BUS,
    CHANNELS,
    DISPATCHER,
    METRICS,
    OUTBOX,
    SECRET_KEY,
    SETTINGS,
    STORE,
    TRANSCRIBER,
)
from gateway.linking import AccountLinker, link_channels
from gateway.metrics import Metrics
from gateway.models import ChannelKind
from gateway.outbox import Outbox
from gateway.protocols import Brain, Transcriber
from gateway.secrets import load_secret_key
from gateway.settings import Settings
from gateway.store.opening import open_store

log = logging.getLogger(__name__)

# The keys live in gateway.keys (parts import them from there); re-exported for
# callers of create_app that read what it built.
__all__ = [
    "BACKEND",
    "BRAIN",
    "BUS",
    "CHANNELS",
    "DISPATCHER",
    "METRICS",
    "OUTBOX",
    "SECRET_KEY",
    "SETTINGS",
    "STORE",
    "TRANSCRIBER",
    "create_app",
    "open_store",
]


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    store = await open_store(app[SETTINGS])
    app[STORE] = store
    yield
    await store.close()


async def _agent_ctx(app: web.Application) -> AsyncIterator[None]:
    from agent.wiring import build_agent  # the agent package owns its own wiring

    settings = app[SETTINGS]
    store = app[STORE]
    backend, brain, close = await build_agent(settings, store, links=store, secret=app[SECRET_KEY])
    app[BACKEND] = backend
    app[BRAIN] = brain
    yield
    await close()


async def _dispatcher_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    dispatcher = Dispatcher(
        app[STORE],
        app[BRAIN],
        app[CHANNELS],
        app[METRICS],
        agent_timeout_s=settings.agent_timeout_s,
    )
    dispatcher.outbox = outbox = Outbox(
        app[STORE],
        app[CHANNELS],
        retry_base_s=settings.outbox_retry_base_s,
        retry_max_s=settings.outbox_retry_max_s,
        max_attempts=settings.outbox_max_attempts,
        poll_s=settings.outbox_poll_s,
    )
    app[OUTBOX] = outbox
    backend = app.get(BACKEND)
    channels = link_channels(sms=settings.sms_link_accounts, email=settings.email_link_accounts)
    if channels and callable(getattr(backend, "find_account", None)):
        dispatcher.linker = AccountLinker(app[STORE], backend, channels)  # type: ignore[arg-type]
    app[DISPATCHER] = dispatcher
    yield
    await dispatcher.drain()


async def _recover(app: web.Application) -> None:
    # An on_startup hook runs after every cleanup_ctx has started: each channel is
    # ready (and has registered its responders) before old messages are answered.
    dispatcher = app[DISPATCHER]
    # Replies stored but not sent before a crash (or a provider error) go out now. The
    # claims of the dead process are dropped first: replies the recovered turns store
    # next are claimed by this one, and are not sent twice.
    await app[OUTBOX].start(single_node=dispatcher.gate is None)
    await dispatcher.recover()


async def _stop_outbox(app: web.Application) -> None:
    # Before the channels close (on_shutdown runs before every cleanup_ctx ends).
    outbox = app.get(OUTBOX)
    if outbox is not None:
        await outbox.stop()


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def metrics(request: web.Request) -> web.Response:
    m = request.app[METRICS]
    return web.Response(body=m.render(), headers={"Content-Type": m.content_type})


def create_app(
    settings: Settings, *, brain: Brain | None = None, transcriber: Transcriber | None = None
) -> web.Application:
    """Build the aiohttp application. `brain` replaces the configured agent and
    `transcriber` the configured speech model (tests); the caller closes them."""
    from channels.email.setup import setup_email
    from channels.phone.outbound.setup import setup_outbound
    from channels.phone.setup import setup_phone
    from channels.sms.setup import setup_sms
    from channels.webchat import setup_webchat
    from gateway.cluster import bus_ctx, cluster_ctx
    from gateway.desk.setup import setup_desk
    from gateway.idle_close import idle_close_ctx
    from gateway.outreach.setup import setup_outreach
    from gateway.routing.setup import setup_routing

    app = web.Application(client_max_size=1024 * 1024, middlewares=[bad_body_middleware])
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[SECRET_KEY] = load_secret_key(settings)
    app[CHANNELS] = {}
    if transcriber is not None:
        app[TRANSCRIBER] = transcriber
    app.cleanup_ctx.append(_store_ctx)
    app.cleanup_ctx.append(bus_ctx)
    if brain is None:
        app.cleanup_ctx.append(_agent_ctx)
    else:
        app[BRAIN] = brain
    app.cleanup_ctx.append(_dispatcher_ctx)
    app.cleanup_ctx.append(cluster_ctx)
    app.cleanup_ctx.append(idle_close_ctx)
    app.on_startup.append(_recover)
    app.on_shutdown.append(_stop_outbox)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    setup_webchat(app)
    setup_phone(app)
    setup_outbound(app)  # outreach calls, when Twilio is set up to place them
    setup_sms(app)
    setup_email(app)
    setup_routing(app)  # after the channels: it wraps their responders at start-up
    setup_desk(app)  # after routing: rep admin refreshes its reps, closed conversations
    setup_outreach(app)  # after the channels and the desk (its API tokens)
    assert ChannelKind.WEBCHAT in app[CHANNELS], "the web chat channel registers itself"
    return app
