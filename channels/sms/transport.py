"""The SMS channel's HTTP side: Twilio's messaging webhooks.

- `POST /twilio/sms`: an incoming SMS/MMS. Checked (signature, account),
  stored durably through `Dispatcher.handle` (which returns once committed;
  the answer is worked out in the background and sent through the REST API),
  then acknowledged at once with an empty `<Response/>`: a slow agent never
  makes Twilio time out and retry. A retry of a MessageSid already stored is
  de-duplicated by the store's unique (channel, external id) key and gets the
  same empty answer. STOP and START change the number's opt-out at once (and
  again, idempotently, in the keyword's turn, so a crash in between loses
  nothing); the keywords never reach the agent (`SmsChannel.respond`).
- `POST /twilio/sms/status`: delivery status callbacks, applied to the stored
  message by its sid (out-of-order callbacks never step a status back; an
  unknown sid is logged and acknowledged). Error 21610 on a message marks its
  recipient opted out.

A forged or unsigned request, or one for another account, gets 403; a form
that is not a message gets 400. Both are counted in
`gateway_bad_input_total{channel="sms"}`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from aiohttp import web

from channels.sms import codec
from channels.sms.rest import UNSUBSCRIBED
from channels.sms.state import SMS
from channels.twilio.signature import signed_form
from gateway.errors import ProtocolError
from gateway.keys import DISPATCHER, METRICS, STORE
from gateway.models import ChannelKind, Identity, IdentityKind
from gateway.phone_numbers import to_e164

log = logging.getLogger("gateway.sms.transport")

SMS_PATH = "/twilio/sms"
CHANNEL = "sms"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


async def _checked_form(request: web.Request) -> Mapping[str, str]:
    state = request.app[SMS]
    form = await signed_form(
        request, state.signatures, state.settings.twilio_account_sid, request.app[METRICS], CHANNEL
    )
    return form


def _bad_request(request: web.Request, exc: ProtocolError) -> web.HTTPBadRequest:
    request.app[METRICS].bad_input.labels(CHANNEL, exc.code).inc()
    log.warning("refused %s %s: %s", request.method, request.path, exc.message)
    return web.HTTPBadRequest(text=exc.message)


async def sms_webhook(request: web.Request) -> web.Response:
    """An incoming SMS/MMS: store it, acknowledge it; the answer follows by REST."""
    form = await _checked_form(request)
    try:
        incoming = codec.parse_inbound(form)
    except ProtocolError as exc:
        raise _bad_request(request, exc) from None
    state = request.app[SMS]
    identity = incoming.message.identity
    state.channel.remember(identity.value, incoming.to)
    ingested = await request.app[DISPATCHER].handle(incoming.message)
    if ingested.duplicate:
        log.info("SMS %s was stored before: not processed again", incoming.message.external_id)
    else:
        # Twilio's count of what the customer sent (before the STOP below, as any message).
        segments = form.get("NumSegments", "1")
        await state.channel.count_segments(
            ingested.conversation.id, ingested.message.external_id or "",
            int(segments) if segments.isdigit() and len(segments) < 4 else 1,
        )  # fmt: skip
        if incoming.keyword in (codec.Keyword.STOP, codec.Keyword.START):
            # At once, so that no reply already on its way is sent after a STOP.
            stop = incoming.keyword is codec.Keyword.STOP
            await request.app[STORE].set_opt_out(identity, stop)
    return web.Response(text=EMPTY_TWIML, content_type="text/xml")


async def sms_status(request: web.Request) -> web.Response:
    """A delivery status callback for a message we sent."""
    form = await _checked_form(request)
    try:
        update = codec.parse_status(form)
    except ProtocolError as exc:
        raise _bad_request(request, exc) from None
    if update is None:
        return web.Response(status=200)
    store = request.app[STORE]
    message = await store.update_delivery(
        ChannelKind.SMS, update.sid, update.status, error_code=update.error_code
    )
    if message is None:
        log.info("status %s for unknown SMS %s", update.status.value, update.sid)
        return web.Response(status=200)
    if update.error_code == str(UNSUBSCRIBED):
        number = to_e164(form.get("To", ""))
        if number is not None:
            await store.set_opt_out(Identity(kind=IdentityKind.PHONE, value=number), True)
    return web.Response(status=200)


__all__ = ["EMPTY_TWIML", "SMS_PATH", "sms_status", "sms_webhook"]
