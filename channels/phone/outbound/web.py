"""The HTTP side of outbound calls: Twilio's answer webhook and status callbacks, and the
voicemail audio.

- `POST /twilio/outbound/answer?o=<token>`: the call was answered (after machine
  detection); answered with `<Connect><Stream>` or `<Play>` + `<Hangup>`;
- `POST /twilio/outbound/status?o=<token>`: call progress; a finished call's stream
  (if any) is closed, as for an inbound call;
- `GET /twilio/outbound/audio/<token>.wav?o=<token>`: a voicemail, by signed expiring
  URL (a node without the file renders it from the call's stored text).

Every POST must carry Twilio's signature for the public URL and a token of ours
(403 otherwise); a CallSid that is no `CA` sid is 400.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from channels.phone.outbound.caller import ANSWER_PATH, AUDIO_PATH, STATUS_PATH, TOKEN_QUERY
from channels.phone.outbound.caller import OutboundCalls as OutboundCalls
from channels.phone.state import PHONE
from channels.phone.transfer.audio import CONTENT_TYPE
from channels.phone.twilio import twiml
from channels.phone.twilio.stream_token import OutreachLeg
from channels.phone.twilio.transport import FINAL_STATUSES, call_status
from channels.twilio import ids
from channels.twilio.signature import refuse, signed_form
from gateway.errors import AuthError, GatewayError, NotFoundError
from gateway.keys import METRICS

CHANNEL = "phone"
OUTBOUND = web.AppKey("phone_outbound", OutboundCalls)


async def _checked(request: web.Request) -> tuple[OutreachLeg, Mapping[str, str]]:
    """The outreach and form of a signed callback: 403 for a bad signature or token."""
    state = request.app[PHONE]
    metrics = request.app[METRICS]
    form = await signed_form(
        request, state.signatures, state.settings.twilio_account_sid, metrics, CHANNEL
    )
    try:
        leg = request.app[OUTBOUND].leg(request.query.get(TOKEN_QUERY, ""))
    except AuthError as exc:
        metrics.bad_input.labels(CHANNEL, "signature").inc()
        raise refuse(request, exc) from None
    if not ids.is_sid(form.get("CallSid", ""), "CA"):
        metrics.bad_input.labels(CHANNEL, "bad_field").inc()
        raise web.HTTPBadRequest(text="CallSid is not a CA sid")
    return leg, form


async def answer(request: web.Request) -> web.Response:
    leg, form = await _checked(request)
    xml = await request.app[OUTBOUND].answered(leg, form["CallSid"], form.get("AnsweredBy", ""))
    return web.Response(text=xml, content_type=twiml.CONTENT_TYPE)


async def status(request: web.Request) -> web.Response:
    leg, form = await _checked(request)
    sid, call = form["CallSid"], form.get("CallStatus", "")
    await request.app[OUTBOUND].status(leg, sid, call, form.get("AnsweredBy", ""))
    if call in FINAL_STATUSES:  # the person hung up: the call's stream ends with it
        await call_status(request.app, {"call_sid": sid, "status": call})
    return web.Response(status=204)


async def audio(request: web.Request) -> web.StreamResponse:
    signed = request.app[OUTBOUND].audio
    if signed is None:
        raise web.HTTPNotFound(text="outbound calls are off")
    calls = request.app[OUTBOUND]
    token = request.match_info["token"]
    try:
        path = signed.resolve(token)
    except AuthError as exc:
        raise refuse(request, exc) from None
    except NotFoundError as exc:  # rendered on another node: render it here
        try:
            leg = calls.leg(request.query.get(TOKEN_QUERY, ""))
            found = await calls.voicemail_file(signed.verify(token), leg)
        except (AuthError, GatewayError, TimeoutError):
            found = None
        if found is None:
            raise web.HTTPNotFound(text=str(exc)) from None
        path = found
    return web.FileResponse(
        path, headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "private, no-store"}
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post(ANSWER_PATH, answer)
    app.router.add_post(STATUS_PATH, status)
    app.router.add_get(AUDIO_PATH, audio)


__all__ = ["OUTBOUND", "add_routes", "answer", "audio", "status"]
