"""`setup_outbound(app)`: outbound calls for proactive outreach (called by `create_app`
after `setup_phone`).

On when Twilio's REST API can be used (GATEWAY_TWILIO_ACCOUNT_SID and _AUTH_TOKEN)
and a number to call from is set (GATEWAY_OUTBOUND_CALLER_ID, else
GATEWAY_TRANSFER_CALLER_ID): the caller is kept under `gateway.keys.OUTBOUND_CALLER`.
It works once the phone channel has started (speech model, voice, REST client);
while the channel is off, `place` raises ChannelError saying why.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from channels.phone.outbound.caller import AUDIO_PATH, OutboundCalls
from channels.phone.outbound.web import OUTBOUND, add_routes
from channels.phone.state import PHONE
from channels.phone.transfer.audio import SignedAudio
from gateway.keys import OUTBOUND_CALLER, SECRET_KEY, SETTINGS, STORE

log = logging.getLogger("gateway.phone.outbound")

AUDIO_SALT = "gateway.phone.outbound-audio"


def setup_outbound(app: web.Application) -> None:
    """Register the outbound caller and its routes when Twilio is configured for it."""
    settings = app[SETTINGS]
    number = settings.outbound_caller_id or settings.transfer_caller_id
    if not (settings.twilio_account_sid and settings.twilio_auth_token and number):
        log.info(
            "outbound calls off: GATEWAY_TWILIO_ACCOUNT_SID, GATEWAY_TWILIO_AUTH_TOKEN and "
            "GATEWAY_OUTBOUND_CALLER_ID (or GATEWAY_TRANSFER_CALLER_ID) are needed"
        )
        return
    state = app[PHONE]
    calls = OutboundCalls(settings, app[SECRET_KEY], state.stream_tokens, number)
    app[OUTBOUND] = calls
    app[OUTBOUND_CALLER] = calls
    state.openings = calls
    add_routes(app)
    app.cleanup_ctx.append(_outbound_ctx)


async def _outbound_ctx(app: web.Application) -> AsyncIterator[None]:
    # After the phone channel's start-up: it loads the voice and the REST client.
    calls, state = app[OUTBOUND], app[PHONE]
    services = state.services
    if services is None or services.calls_api is None:
        calls.off_reason = f"the phone channel is off: {state.off_reason}"
        log.warning("outbound calls off: %s", calls.off_reason)
        yield
        return
    settings = state.settings
    audio = SignedAudio(
        settings.data_dir / "outbound-audio", app[SECRET_KEY], settings.public_url,
        services.synthesizer, ttl_s=settings.outbound_audio_ttl_s, path=AUDIO_PATH,
        salt=AUDIO_SALT,
    )  # fmt: skip
    audio.reset()
    calls.attach(app[STORE], services.calls_api, audio, services.synthesizer)
    log.info("outbound calls on, from %s", calls.caller_id)
    try:
        yield
    finally:
        await calls.close()


__all__ = ["setup_outbound"]
