"""The HTTP side of warm transfers: Twilio's callbacks and the brief's audio.

- `POST /twilio/transfer/{id}/rep-status`: status callbacks of a rep's call;
- `POST /twilio/transfer/{id}/answer`: the rep's `<Gather>` result (1 accepts),
  answered with the TwiML that joins the conference (or hangs up);
- `POST /twilio/transfer/{id}/conference`: the conference's events;
- `POST /twilio/transfer/{id}/callback`: the caller's answer to a callback offer;
- `GET /twilio/transfer/audio/{token}.wav`: a brief or prompt, by signed URL.

Every POST must carry Twilio's signature for the public URL (403 otherwise,
like the voice webhooks); a transfer the gateway does not know is answered
harmlessly (Twilio would only retry an error). On several nodes, a callback
for a transfer another node holds is forwarded to it over the bus. The audio URL carries its own
signature (`transfer_audio`): forged or expired 403, gone 404; on several nodes a brief
rendered on another node is fetched from it over the bus, and a prompt rendered here too.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Mapping

from aiohttp import web

from channels.phone.state import PHONE
from channels.phone.transfer.audio import AUDIO_PATH, CONTENT_TYPE, PROMPTS, audio_owner
from channels.phone.transfer.twiml import hang_up
from channels.phone.transfer.warm import (
    ANSWER_PATH,
    CALLBACK_PATH,
    CONFERENCE_PATH,
    REP_STATUS_PATH,
)
from channels.phone.twilio import twiml
from channels.twilio.signature import signed_form
from gateway.bus import Data
from gateway.errors import AuthError, GatewayError, NotFoundError
from gateway.keys import BUS, METRICS

log = logging.getLogger("gateway.phone.transfer_web")

CHANNEL = "phone"
_FIELDS = ("CallSid", "CallStatus", "Digits", "StatusCallbackEvent")


async def _checked(request: web.Request) -> Mapping[str, str]:
    """The form of a signed Twilio callback (403 otherwise)."""
    state = request.app[PHONE]
    form = await signed_form(
        request, state.signatures, state.settings.twilio_account_sid, request.app[METRICS], CHANNEL
    )
    return form


def _xml(text: str) -> web.Response:
    return web.Response(text=text, content_type=twiml.CONTENT_TYPE)


async def _callback(request: web.Request, op: str) -> web.Response:
    """One of the transfer's callbacks, run where the transfer lives: here, or on the
    node its id names (Twilio may call any node), over the bus."""
    form = await _checked(request)
    data: Data = {"op": op, "transfer_id": request.match_info["transfer_id"],
                  "form": {k: form.get(k, "") for k in _FIELDS}}  # fmt: skip
    transfers = request.app[PHONE].transfers
    bus = request.app[BUS]
    owner = data["transfer_id"].partition(".")[0]
    here = transfers is not None and transfers.get(data["transfer_id"]) is not None
    if not here and bus.shared and "." in data["transfer_id"] and owner != bus.node_id:
        try:
            result = await bus.call(owner, "phone.transfer", data, timeout_s=10)
        except GatewayError as exc:  # the owner is gone: the transfer went with it
            log.warning("transfer %s: cannot reach node %s: %s", data["transfer_id"], owner, exc)
            result = {"twiml": hang_up() if op in ("answer", "callback") else None}
    else:
        if transfers is None:
            raise web.HTTPNotFound(text="warm transfers are off")
        result = await transfer_callback(request.app, data)
    return _xml(result["twiml"]) if result.get("twiml") else web.Response(status=204)


async def transfer_callback(app: web.Application, data: Data) -> Data:
    """Run a transfer callback on this node (also for callbacks forwarded here)."""
    transfers = app[PHONE].transfers
    if transfers is None:
        raise NotFoundError("warm transfers are off on this node")
    tid, form, op = str(data["transfer_id"]), dict(data["form"]), data["op"]
    sid, digits = form.get("CallSid", ""), form.get("Digits", "")
    if op == "rep-status":
        await transfers.on_rep_status(tid, sid, form.get("CallStatus", ""))
    elif op == "answer":
        return {"twiml": await transfers.on_answer(tid, sid, digits)}
    elif op == "conference":
        await transfers.on_conference(tid, form.get("StatusCallbackEvent", ""), sid)
    elif op == "callback":
        return {"twiml": await transfers.on_callback_answer(tid, sid, digits)}
    return {"twiml": None}


async def rep_status(request: web.Request) -> web.Response:
    return await _callback(request, "rep-status")


async def answer(request: web.Request) -> web.Response:
    return await _callback(request, "answer")


async def conference(request: web.Request) -> web.Response:
    return await _callback(request, "conference")


async def callback(request: web.Request) -> web.Response:
    return await _callback(request, "callback")


_AUDIO_HEADERS = {"Content-Type": CONTENT_TYPE, "Cache-Control": "private, no-store"}


async def audio(request: web.Request) -> web.StreamResponse:
    transfers = request.app[PHONE].transfers
    if transfers is None:
        raise web.HTTPNotFound(text="warm transfers are off")
    token = request.match_info["token"]
    try:
        name = transfers.audio.verify(token)
        path = transfers.audio.resolve(token)
    except AuthError as exc:
        log.warning("refused transfer audio: %s", exc)
        raise web.HTTPForbidden(text="invalid or expired audio URL") from None
    except NotFoundError as exc:
        if name in PROMPTS:  # rendered on another node: render it here too
            path = await transfers.audio.prompt(name, PROMPTS[name])
        else:
            wav = await _audio_elsewhere(request.app, name, token)
            if wav is None:
                raise web.HTTPNotFound(text=str(exc)) from None
            return web.Response(body=wav, headers=_AUDIO_HEADERS)
    return web.FileResponse(path, headers=_AUDIO_HEADERS)


async def _audio_elsewhere(app: web.Application, name: str, token: str) -> bytes | None:
    """A brief another node rendered (Twilio's GET may land on any node), fetched from
    that node over the bus; None when no other node has it."""
    bus = app[BUS]
    owner = audio_owner(name)
    if not bus.shared or owner is None or owner == bus.node_id:
        return None
    try:
        answer = await bus.call(owner, "phone.transfer_audio", {"token": token}, timeout_s=10)
    except GatewayError as exc:  # gone (its node died, the transfer is over)
        log.info("transfer audio %s: not on node %s: %s", name, owner, exc)
        return None
    return base64.b64decode(str(answer["wav"]))


async def transfer_audio(app: web.Application, data: Data) -> Data:
    """Serve one of this node's transfer audio files to another node (bus call)."""
    transfers = app[PHONE].transfers
    if transfers is None:
        raise NotFoundError("warm transfers are off on this node")
    path = transfers.audio.resolve(str(data.get("token", "")))
    wav = await asyncio.to_thread(path.read_bytes)
    return {"wav": base64.b64encode(wav).decode("ascii")}


def add_routes(app: web.Application) -> None:
    """Register the transfer routes (they answer 404 while transfers are off)."""
    app.router.add_post(REP_STATUS_PATH, rep_status)
    app.router.add_post(ANSWER_PATH, answer)
    app.router.add_post(CONFERENCE_PATH, conference)
    app.router.add_post(CALLBACK_PATH, callback)
    app.router.add_get(AUDIO_PATH, audio)


__all__ = [
    "add_routes", "answer", "audio", "callback", "conference", "rep_status", "transfer_audio",
    "transfer_callback",
]  # fmt: skip
