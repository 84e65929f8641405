"""`setup_sms(app)`: register the SMS channel (called by `gateway.app.create_app`).

Routes and the outbound channel are registered at once; at start-up (a
`cleanup_ctx`, after the store and the dispatcher) the channel gets the store
and the Twilio REST client and registers its keyword `Responder` with the
dispatcher, before any unanswered message is recovered. At shutdown it waits
for the answers under way, then closes the client.

Without an auth token every Twilio request is refused with 403 (as for the
phone); without an account SID messages are still received and stored, and
every reply is recorded as failed (`sms_off`). Both are logged at start-up.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from channels.sms.channel import STATUS_PATH, SmsChannel
from channels.sms.rest import TwilioMessages
from channels.sms.state import SMS, SmsState
from channels.sms.transport import SMS_PATH, sms_status, sms_webhook
from channels.twilio.signature import TwilioSignatures
from gateway.keys import CHANNELS, DISPATCHER, SETTINGS, STORE
from gateway.models import ChannelKind, IdentityKind

log = logging.getLogger("gateway.sms")


def setup_sms(app: web.Application) -> None:
    """Register the SMS channel, its routes and its resources on `app`."""
    settings = app[SETTINGS]
    state = SmsState(
        settings=settings,
        signatures=TwilioSignatures.from_settings(settings),
        channel=SmsChannel(settings),
    )
    app[SMS] = state
    app[CHANNELS][ChannelKind.SMS] = state.channel
    app.router.add_post(SMS_PATH, sms_webhook)
    app.router.add_post(STATUS_PATH, sms_status)
    app.cleanup_ctx.append(_sms_ctx)


async def _sms_ctx(app: web.Application) -> AsyncIterator[None]:
    state = app[SMS]
    settings = state.settings
    api = TwilioMessages.from_settings(settings)
    if not state.signatures.configured:
        log.warning(
            "SMS channel off: GATEWAY_TWILIO_AUTH_TOKEN is unset, so no Twilio request can be "
            "checked: every request to %s is refused with 403",
            SMS_PATH,
        )
    elif api is None:
        log.warning("SMS replies off: GATEWAY_TWILIO_ACCOUNT_SID is unset; messages are stored "
                    "and every reply is recorded as failed (sms_off)")  # fmt: skip
    else:
        log.info("SMS channel ready: point a Twilio number's messaging webhook at %s%s",
                 settings.public_url, SMS_PATH)  # fmt: skip
    dispatcher = app[DISPATCHER]
    state.channel.attach(app[STORE], api)
    dispatcher.responders[ChannelKind.SMS] = state.channel.respond
    dispatcher.notifiers[IdentityKind.PHONE] = state.channel  # one-time codes by text
    try:
        yield
    finally:
        await dispatcher.drain()  # answers under way still go out
        dispatcher.responders.pop(ChannelKind.SMS, None)
        dispatcher.notifiers.pop(IdentityKind.PHONE, None)
        state.channel.detach()
        if api is not None:
            await api.close()


__all__ = ["setup_sms"]
