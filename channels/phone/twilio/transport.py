"""The phone channel's HTTP side: Twilio's webhooks and the Media Stream websocket.

- `POST /twilio/voice`: the incoming-call webhook, answered with
  `<Connect><Stream>` (or a spoken apology while the channel is off);
- `POST /twilio/voice/status`: call status callbacks; a finished call's
  stream is closed, which ends the call's session cleanly;
- `GET /twilio/media`: the bidirectional Media Stream (websocket);
- `GET /twilio/calls/{call_sid}`: what was said on a live or recent call, and
  the stage timings of each spoken turn (JSON, signed like a Twilio request; for
  `gateway simulate-call` and `bench/voice_latency.py`).

Every request must carry Twilio's signature (403 otherwise); a signed webhook
whose CallSid is not a `CA` sid is 400. Twilio signs a stream's upgrade over
the bare URL only, so the voice webhook's TwiML carries a one-time, expiring,
signed token bound to the call (stream_token.py): a `start` without the token
of its own call closes the stream, and the caller's number comes from the
token (what the signed webhook said), never from `start`. On the stream,
a message that is malformed, too large, out of order or for another stream is
dropped and counted (`gateway_bad_input_total{channel="phone"}`); the call
goes on. A stream that ends without `stop` ends the call the same way.

An outbound call of outreach reaches the same stream from its own answer
webhook (channels/phone/outbound/web.py): its token also names the outreach,
whose opening the call then says first.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from channels.phone.call.phone_call import PhoneCall
from channels.phone.services import CallInfo
from channels.phone.state import PHONE
from channels.phone.twilio import codec, stream_token, twiml
from channels.twilio import ids
from channels.twilio.signature import refuse, signed_form
from gateway.errors import AuthError, GatewayError, ProtocolError
from gateway.keys import BUS, METRICS, STORE
from gateway.models import Identity, IdentityKind, Verification
from gateway.phone_numbers import to_e164
from gateway.store.usage_store import open_usage
from gateway.usage import Usage

log = logging.getLogger("gateway.phone.transport")

VOICE_PATH = "/twilio/voice"
STATUS_PATH = "/twilio/voice/status"
MEDIA_PATH = "/twilio/media"
CALL_PATH = "/twilio/calls/{call_sid}"
CHANNEL = "phone"
# aiohttp closes the socket (1009) above this; the codec drops messages between
# codec.MAX_MESSAGE_CHARS and this one by one, keeping the call.
WS_MAX_MSG_BYTES = 16 * codec.MAX_MESSAGE_CHARS
HEARTBEAT_S = 20.0
FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


def caller_identity(caller: str, call_sid: str) -> Identity:
    """The caller's `phone:` identity: their number in E.164, verified only by
    caller ID. A withheld or non-phone caller (a SIP or client URI) gets an
    identity of its own for this call, so anonymous callers are never merged."""
    number = None if ":" in caller or "@" in caller else to_e164(caller)
    if number is not None and number not in _WITHHELD:
        return Identity(kind=IdentityKind.PHONE, value=number, verified=Verification.CALLER_ID)
    return Identity(kind=IdentityKind.PHONE, value=f"call:{call_sid}")


# Numbers Twilio puts in `From` when the caller id is withheld (ANONYMOUS, RESTRICTED,
# BLOCKED, UNAVAILABLE, UNKNOWN spelled on a keypad).
_WITHHELD = frozenset({"+266696687", "+7378742833", "+2562533", "+8656696", "+86282452253"})


# ------------------------------------------------------------------- webhooks


async def voice_webhook(request: web.Request) -> web.Response:
    """An incoming call: connect it to our Media Stream."""
    state = request.app[PHONE]
    form = await signed_form(
        request, state.signatures, state.settings.twilio_account_sid, request.app[METRICS], CHANNEL
    )
    call_sid = form.get("CallSid", "")
    if not ids.is_sid(call_sid, "CA"):
        request.app[METRICS].bad_input.labels(CHANNEL, "bad_field").inc()
        raise web.HTTPBadRequest(text="CallSid is not a CA sid")
    if state.services is None:
        log.warning("call %s answered with an apology: %s", call_sid, state.off_reason)
        return web.Response(text=twiml.unavailable(), content_type=twiml.CONTENT_TYPE)
    # The caller's number travels inside the signed, one-time token (stream_token.py):
    # the stream's `start` is unsigned, so nothing in it is trusted but the token.
    token = state.stream_tokens.issue(call_sid, form.get("From", ""))
    parameters = {"callSid": call_sid, stream_token.PARAMETER: token}
    stream_url = state.settings.public_ws_base + MEDIA_PATH
    return web.Response(
        text=twiml.connect_stream(stream_url, parameters), content_type=twiml.CONTENT_TYPE
    )


async def status_callback(request: web.Request) -> web.Response:
    """Call progress from Twilio; a call that is over has its stream closed."""
    state = request.app[PHONE]
    form = await signed_form(
        request, state.signatures, state.settings.twilio_account_sid, request.app[METRICS], CHANNEL
    )
    data = {"call_sid": form.get("CallSid", ""), "status": form.get("CallStatus", "")}
    if not ids.is_sid(data["call_sid"], "CA"):
        request.app[METRICS].bad_input.labels(CHANNEL, "bad_field").inc()
        raise web.HTTPBadRequest(text="CallSid is not a CA sid")
    held_here = await call_status(request.app, data)
    await _call_usage(request, data["call_sid"], data["status"], form.get("CallDuration", ""))
    bus = request.app[BUS]
    if not held_here and bus.shared and data["status"] in FINAL_STATUSES:
        # Another node may hold this call's stream (or its warm transfer): tell them.
        await bus.broadcast("phone.status", data)
    return web.Response(status=204)


async def _call_usage(request: web.Request, sid: str, status: str, duration: str) -> None:
    """A completed call's duration (Twilio's billed seconds), as its conversation's
    usage; a retried callback counts once (the sid is the usage's source)."""
    if status != "completed" or not duration.isdigit() or len(duration) > 9:
        return
    try:
        found = await open_usage(request.app[STORE]).record_call(sid, Usage(call_s=int(duration)))
    except GatewayError as exc:  # Twilio retries a callback that fails: answer it anyway
        log.warning("call %s: its duration was not recorded: %s", sid, exc)
        return
    if found is not None:
        log.info("call %s: %s s on conversation %s", sid, duration, found)


async def call_status(app: web.Application, data: dict[str, Any]) -> bool:
    """A call's final status (from Twilio, or forwarded by another node): its stream
    is closed and a warm transfer holding it learns the caller is gone. Returns
    whether this node holds the call or its transfer."""
    state = app[PHONE]
    sid, status = str(data.get("call_sid", "")), str(data.get("status", ""))
    if status not in FINAL_STATUSES:
        return state.channel.live(sid) is not None
    call = state.channel.live(sid)
    if call is not None:
        call.terminate(f"Twilio reports the call {status}")
    transfer = state.transfers.of_caller(sid) if state.transfers is not None else None
    if state.transfers is not None:
        # A caller held for a warm transfer has no stream any more: tell the transfer.
        await state.transfers.on_caller_gone(sid, f"hung up ({status})")
    return call is not None or transfer is not None


async def call_transcript(request: web.Request) -> web.Response:
    """The messages of a live or recent call, oldest first (signed like a webhook)."""
    state = request.app[PHONE]
    try:
        state.signatures.check(
            state.signatures.http_url(request), {}, request.headers.get("X-Twilio-Signature")
        )
    except AuthError as exc:
        raise refuse(request, exc) from None
    info = state.channel.info(request.match_info["call_sid"])
    if info is None or info.conversation is None:
        raise web.HTTPNotFound(text="no such call here")
    ids = set(info.message_ids)
    stored = await request.app[STORE].conversation_messages(info.conversation.id)
    messages = [
        {
            "id": m.id,
            "author": m.author.value,
            "text": m.text,
            "confidence": m.confidence,
            "start_ms": m.timing.start_ms if m.timing else None,
            "end_ms": m.timing.end_ms if m.timing else None,
        }
        for m in stored
        if m.id in ids
    ]
    body = {
        "call_sid": info.call_sid,
        "conversation_id": info.conversation.id,
        "live": info.ended is None,
        "ended": info.ended,
        "messages": messages,
        "turns": [turn.as_json() for turn in info.turns],
    }
    return web.json_response(body)


# --------------------------------------------------------------- media stream


async def media_socket(request: web.Request) -> web.StreamResponse:
    """Twilio's Media Stream for one call, until it stops or the socket closes."""
    app = request.app
    state = app[PHONE]
    metrics = app[METRICS]
    try:
        state.signatures.check_upgrade(request)
    except AuthError as exc:
        metrics.bad_input.labels(CHANNEL, "signature").inc()
        raise refuse(request, exc) from None
    if state.services is None:
        raise web.HTTPServiceUnavailable(text=f"the phone channel is off: {state.off_reason}")
    ws = web.WebSocketResponse(max_msg_size=WS_MAX_MSG_BYTES, heartbeat=HEARTBEAT_S)
    if not ws.can_prepare(request).ok:
        raise web.HTTPBadRequest(text="this endpoint is a Twilio Media Stream websocket")
    await ws.prepare(request)
    stream = MediaStream(request.app, ws)
    gauge = metrics.connections.labels(CHANNEL)
    gauge.inc()
    try:
        await stream.run()
    finally:
        gauge.dec()
        await stream.finish()
    return ws


class MediaStream:
    """One Media Stream socket: checks the order of Twilio's messages and feeds the call."""

    def __init__(self, app: web.Application, ws: web.WebSocketResponse) -> None:
        self.app = app
        self.ws = ws
        self.call: PhoneCall | None = None
        self.last_sequence = 0
        self.last_chunk = 0
        self.stopped = False

    async def run(self) -> None:
        async for msg in self.ws:
            if msg.type is WSMsgType.TEXT:
                await self.on_text(msg.data)
            elif msg.type is WSMsgType.BINARY:
                self.drop("binary", "Twilio sends JSON text messages only")
            elif msg.type is WSMsgType.ERROR:
                log.info("media stream socket error: %s", self.ws.exception())
                break
            if self.stopped:
                break

    async def finish(self) -> None:
        """The stream is over, with or without `stop`. aiohttp may cancel this handler
        once the peer is gone, so the call's ending runs in a task of its own (the
        channel waits for it at shutdown)."""
        if self.call is not None:
            reason = "stop" if self.stopped else "stream closed"
            ending = self.app[PHONE].channel.track(self.call.end(reason))
            await asyncio.shield(ending)
        if not self.ws.closed:
            await self.ws.close()

    def drop(self, code: str, message: str) -> None:
        self.app[METRICS].bad_input.labels(CHANNEL, code).inc()
        sid = self.call.call_sid if self.call is not None else "-"
        log.info("call %s: dropped a stream message (%s): %s", sid, code, message[:200])

    async def on_text(self, raw: str) -> None:
        try:
            event = codec.parse_message(raw)
            await self.route(event)
        except ProtocolError as exc:
            self.drop(exc.code, exc.message)
        except GatewayError as exc:
            log.warning("media stream message failed: %s", exc)
        except Exception:
            log.exception("media stream message handling failed")  # costs one message

    async def route(self, event: codec.TwilioEvent) -> None:
        if isinstance(event, codec.TwilioConnected):
            return
        if self.stopped:
            raise ProtocolError("after_stop", f"{event.event} after stop")
        call = self.call
        if isinstance(event, codec.TwilioStart):
            if call is not None:
                raise ProtocolError("duplicate_start", "a stream starts once")
        elif call is None:
            raise ProtocolError("not_started", f"{event.event} before start")
        elif event.stream_sid != call.info.stream_sid:
            raise ProtocolError("wrong_stream", f"{event.event} for another stream")
        # Only a message for this stream moves the sequence on.
        if event.sequence_number is not None:
            if event.sequence_number <= self.last_sequence:
                raise ProtocolError("out_of_order", f"sequence {event.sequence_number} again")
            self.last_sequence = event.sequence_number
        if isinstance(event, codec.TwilioStart):
            await self.start(event)
            return
        assert call is not None
        if isinstance(event, codec.TwilioMedia):
            if event.track != "inbound":
                return
            if event.chunk <= self.last_chunk:
                raise ProtocolError("out_of_order", f"media chunk {event.chunk} again")
            self.last_chunk = event.chunk
            await call.on_audio(event.payload)
        elif isinstance(event, codec.TwilioDtmf):
            await call.on_key(event.digit)
        elif isinstance(event, codec.TwilioMark):
            call.on_mark(event.name)
        elif isinstance(event, codec.TwilioStop):
            self.stopped = True

    async def start(self, event: codec.TwilioStart) -> None:
        if not event.media_format.is_mulaw_8k_mono:
            raise ProtocolError("bad_format", f"unsupported audio {event.media_format}")
        services = self.app[PHONE].services
        if services is None:
            await self.ws.close()
            return
        tokens = self.app[PHONE].stream_tokens
        token = event.custom_parameters.get(stream_token.PARAMETER, "")
        try:
            grant = tokens.redeem(token, event.call_sid)
        except AuthError as exc:
            # A replayed upgrade signature, or a stream for a call we never answered.
            self.drop("stream_token", str(exc))
            self.stopped = True
            await self.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"bad stream token")
            return
        caller = grant.caller
        info = CallInfo(
            call_sid=event.call_sid,
            stream_sid=event.stream_sid,
            caller=caller,
            identity=caller_identity(caller, event.call_sid),
            outreach=grant.outreach,
        )
        openings = self.app[PHONE].openings
        if grant.outreach is not None and openings is not None:
            info.opening = await openings.opening(grant.outreach, event.call_sid)
        self.call = PhoneCall(services, info, self.ws.send_str, self.ws.close)
        try:
            await self.call.begin()
        except GatewayError as exc:
            log.error("call %s cannot start: %s", event.call_sid, exc)
            await self.ws.close()


__all__ = [
    "CALL_PATH",
    "MEDIA_PATH",
    "STATUS_PATH",
    "VOICE_PATH",
    "MediaStream",
    "call_status",
    "call_transcript",
    "caller_identity",
    "media_socket",
    "status_callback",
    "voice_webhook",
]
