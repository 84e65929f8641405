"""`setup_email(app)`: register the email channel (called by `gateway.app.create_app`).

Without `GATEWAY_EMAIL_ADDRESS` the channel is off. With it, the outbound channel
is registered; at start-up the embedded SMTP server listens on
`GATEWAY_EMAIL_LISTEN` (empty: none), the IMAP poller reads `GATEWAY_EMAIL_IMAP`
(unset: none), and replies go out through
`GATEWAY_EMAIL_RELAY` (unset: every reply is recorded as failed, `email_off`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from channels.email.channel import EmailChannel
from channels.email.imap import ImapMailbox, ImapPoller
from channels.email.relay import Relay
from channels.email.state import EMAIL, EmailState
from channels.email.transport import InboundHandler, server_tls, start_server
from gateway.keys import CHANNELS, DISPATCHER, SECRET_KEY, SETTINGS, STORE
from gateway.models import ChannelKind, IdentityKind

log = logging.getLogger("gateway.email")


def setup_email(app: web.Application) -> None:
    """Register the email channel and its resources on `app` (when configured)."""
    settings = app[SETTINGS]
    if not settings.email_address:
        return
    state = EmailState(settings=settings, channel=EmailChannel(settings, app[SECRET_KEY]))
    if settings.email_listen:  # a bad certificate stops start-up, not the first mail
        state.tls = server_tls(settings.email_tls_cert, settings.email_tls_key)
    app[EMAIL] = state
    app[CHANNELS][ChannelKind.EMAIL] = state.channel
    app.cleanup_ctx.append(_email_ctx)


async def _email_ctx(app: web.Application) -> AsyncIterator[None]:
    state = app[EMAIL]
    settings = state.settings
    relay = Relay.from_settings(settings)
    if relay is None:
        log.warning("email replies off: GATEWAY_EMAIL_RELAY is unset; mail is stored and every "
                    "reply is recorded as failed (email_off)")  # fmt: skip
    dispatcher = app[DISPATCHER]
    state.channel.attach(app[STORE], relay)
    dispatcher.responders[ChannelKind.EMAIL] = state.channel.respond
    dispatcher.notifiers[IdentityKind.EMAIL] = state.channel  # one-time codes by mail
    if settings.email_listen:
        host, _, port = settings.email_listen.rpartition(":")
        handler = InboundHandler(state.channel, dispatcher)
        state.server = await start_server(
            handler, host.strip("[]"), int(port), max_bytes=settings.email_max_bytes,
            hostname=state.channel.domain, tls=state.tls,
            require_tls=settings.email_require_starttls,
        )  # fmt: skip
        state.port = state.server.sockets[0].getsockname()[1]
        tls = ("STARTTLS required" if settings.email_require_starttls else "STARTTLS offered") \
            if state.tls else "no STARTTLS"  # fmt: skip
        log.info("email: SMTP server for %s listening on %s:%s (%s)", settings.email_address,
                 host, state.port, tls)  # fmt: skip
    mailbox = ImapMailbox.from_settings(settings)
    if mailbox is not None:
        poller = ImapPoller(mailbox, state.channel, dispatcher, settings.email_imap_interval_s)
        state.poller = asyncio.create_task(poller.run())
        log.info("email: polling %s/%s over IMAP every %ss", mailbox.host, mailbox.mailbox,
                 settings.email_imap_interval_s)  # fmt: skip
    if not settings.email_listen and mailbox is None:
        log.warning("email: GATEWAY_EMAIL_LISTEN and GATEWAY_EMAIL_IMAP are empty, no mail is "
                    "received")  # fmt: skip
    try:
        yield
    finally:
        if state.poller is not None:
            state.poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await state.poller
        if state.server is not None:
            state.server.close()
            await state.server.wait_closed()
        await dispatcher.drain()  # answers under way still go out
        dispatcher.responders.pop(ChannelKind.EMAIL, None)
        dispatcher.notifiers.pop(IdentityKind.EMAIL, None)
        state.channel.detach()


__all__ = ["setup_email"]
