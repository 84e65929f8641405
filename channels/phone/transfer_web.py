"""The HTTP side of warm transfers: Twilio's callbacks and the brief's audio.

- `POST /twilio/transfer/{id}/rep-status`: status callbacks of a rep's call;
- `POST /twilio/transfer/{id}/answer`: the rep's `<Gather>` result (1 accepts),
  answered with the TwiML that joins the conference (or hangs up);
- `POST /twilio/transfer/{id}/conference`: the conference's events;
- `POST /twilio/transfer/{id}/callback`: the caller's answer to a callback offer;
- `GET /twilio/transfer/audio/{token}.wav`: a brief or prompt, by signed URL.

Every POST must carry Twilio's signature for the public URL (403 otherwise,
like the voice webhooks); a transfer the gateway does not know is answered
harmlessly (Twilio would only retry an error). The audio URL carries its own
signature (`transfer_audio`): forged or expired 403, gone 404.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from aiohttp import web

from channels.phone import twiml
from channels.phone.state import PHONE
from channels.phone.transfer import (
    ANSWER_PATH,
    CALLBACK_PATH,
    CONFERENCE_PATH,
    REP_STATUS_PATH,
    WarmTransfers,
)
from channels.phone.transfer_audio import AUDIO_PATH, CONTENT_TYPE
from channels.twilio.signature import check_account, refuse
from gateway.app import METRICS
from gateway.errors import AuthError, NotFoundError

log = logging.getLogger("gateway.phone.transfer_web")

CHANNEL = "phone"


async def _checked(request: web.Request) -> tuple[WarmTransfers, Mapping[str, str]]:
    """The transfers and the form of a signed Twilio callback (403 / 404 otherwise)."""
    state = request.app[PHONE]
    try:
        form = await state.signatures.check_form(request)
        check_account(state.settings.twilio_account_sid, form.get("AccountSid", ""))
    except AuthError as exc:
        request.app[METRICS].bad_input.labels(CHANNEL, "signature").inc()
        raise refuse(request, exc) from None
    if state.transfers is None:
        raise web.HTTPNotFound(text="warm transfers are off")
    return state.transfers, form


def _xml(text: str) -> web.Response:
    return web.Response(text=text, content_type=twiml.CONTENT_TYPE)


async def rep_status(request: web.Request) -> web.Response:
    transfers, form = await _checked(request)
    await transfers.on_rep_status(
        request.match_info["transfer_id"], form.get("CallSid", ""), form.get("CallStatus", "")
    )
    return web.Response(status=204)


async def answer(request: web.Request) -> web.Response:
    transfers, form = await _checked(request)
    return _xml(
        await transfers.on_answer(
            request.match_info["transfer_id"], form.get("CallSid", ""), form.get("Digits", "")
        )
    )


async def conference(request: web.Request) -> web.Response:
    transfers, form = await _checked(request)
    await transfers.on_conference(
        request.match_info["transfer_id"],
        form.get("StatusCallbackEvent", ""),
        form.get("CallSid", ""),
    )
    return web.Response(status=204)


async def callback(request: web.Request) -> web.Response:
    transfers, form = await _checked(request)
    return _xml(
        await transfers.on_callback_answer(
            request.match_info["transfer_id"], form.get("CallSid", ""), form.get("Digits", "")
        )
    )


async def audio(request: web.Request) -> web.StreamResponse:
    transfers = request.app[PHONE].transfers
    if transfers is None:
        raise web.HTTPNotFound(text="warm transfers are off")
    try:
        path = transfers.audio.resolve(request.match_info["token"])
    except AuthError as exc:
        log.warning("refused transfer audio: %s", exc)
        raise web.HTTPForbidden(text="invalid or expired audio URL") from None
    except NotFoundError as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    return web.FileResponse(path, headers={"Content-Type": CONTENT_TYPE,
                                           "Cache-Control": "private, no-store"})  # fmt: skip


def add_routes(app: web.Application) -> None:
    """Register the transfer routes (they answer 404 while transfers are off)."""
    app.router.add_post(REP_STATUS_PATH, rep_status)
    app.router.add_post(ANSWER_PATH, answer)
    app.router.add_post(CONFERENCE_PATH, conference)
    app.router.add_post(CALLBACK_PATH, callback)
    app.router.add_get(AUDIO_PATH, audio)


__all__ = ["add_routes", "answer", "audio", "callback", "conference", "rep_status"]
