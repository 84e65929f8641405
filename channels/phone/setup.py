"""`setup_phone(app)`: register the phone channel (called by `gateway.app.create_app`).

Routes and the outbound channel are registered at once; the expensive parts
start in a `cleanup_ctx` (after the store, agent and dispatcher): the speech
model (one for all calls, loaded off the loop), the Silero VAD session, the
espeak-ng worker and the pre-rendered prompts, and the REST client. Closed in
reverse at shutdown, after every live call has been ended.

The channel stays off, and the gateway runs on, when there is no speech model
(the ModelMissing message is logged and the voice webhook answers with a
spoken apology) or no auth token (every Twilio request is refused with 403).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from channels.phone.call.voice import PhonePrompts
from channels.phone.channel import PhoneChannel
from channels.phone.services import AccountLookup, CallServices
from channels.phone.state import PHONE, PhoneState
from channels.phone.transfer.audio import SignedAudio
from channels.phone.transfer.routing import RoutingTargets
from channels.phone.transfer.state import ConfiguredTargets
from channels.phone.transfer.warm import WarmTransfers
from channels.phone.transfer.web import add_routes as add_transfer_routes
from channels.phone.transfer.web import transfer_audio, transfer_callback
from channels.phone.twilio.rest import TwilioCalls
from channels.phone.twilio.stream_token import StreamTokens
from channels.phone.twilio.transport import (
    CALL_PATH,
    MEDIA_PATH,
    STATUS_PATH,
    VOICE_PATH,
    call_status,
    call_transcript,
    media_socket,
    status_callback,
    voice_webhook,
)
from channels.speech.end_of_turn import AudioTurnJudge, EndOfTurnModelMissing, SmartTurn
from channels.speech.silero import SileroVad
from channels.speech.stt import WhisperTranscriber
from channels.speech.tts import EspeakSynthesizer
from channels.speech.vad import EndpointerConfig
from channels.twilio.signature import TwilioSignatures
from gateway.errors import ConfigError, GatewayError
from gateway.keys import (
    BACKEND,
    BUS,
    CHANNELS,
    DISPATCHER,
    METRICS,
    SECRET_KEY,
    SETTINGS,
    STORE,
    TRANSCRIBER,
)
from gateway.models import ChannelKind
from gateway.settings import Settings

log = logging.getLogger("gateway.phone")


def endpointer_config(settings: Settings, *, smart: bool | None = None) -> EndpointerConfig:
    """The endpointer tuning from GATEWAY_PHONE_* settings (ConfigError naming them);
    `smart`: the audio judges the end of turn (default: GATEWAY_PHONE_END_OF_TURN), so
    an unfinished turn waits GATEWAY_PHONE_SMART_TURN_MAX_MS."""
    if smart is None:
        smart = settings.phone_end_of_turn == "smart"
    try:
        return EndpointerConfig(
            end_silence_ms=(
                settings.phone_smart_turn_max_ms if smart else settings.phone_end_silence_ms
            ),
            min_speech_ms=settings.phone_min_speech_ms,
            max_utterance_ms=settings.phone_max_utterance_ms,
        )
    except ConfigError as exc:
        raise ConfigError(
            f"GATEWAY_PHONE_END_SILENCE_MS / _MIN_SPEECH_MS / _MAX_UTTERANCE_MS: {exc}"
        ) from exc


def setup_phone(app: web.Application) -> None:
    """Register the phone channel, its routes and its resources on `app`."""
    settings = app[SETTINGS]
    endpointer_config(settings)  # a bad setting stops start-up here
    state = PhoneState(
        settings=settings,
        signatures=TwilioSignatures.from_settings(settings),
        channel=PhoneChannel(),
        stream_tokens=StreamTokens(app[SECRET_KEY]),
    )
    app[PHONE] = state
    app[CHANNELS][ChannelKind.PHONE] = state.channel
    app.router.add_post(VOICE_PATH, voice_webhook)
    app.router.add_post(STATUS_PATH, status_callback)
    app.router.add_get(MEDIA_PATH, media_socket)
    app.router.add_get(CALL_PATH, call_transcript)
    add_transfer_routes(app)
    app.cleanup_ctx.append(_phone_ctx)
    app.on_shutdown.append(_end_calls)


async def _phone_ctx(app: web.Application) -> AsyncIterator[None]:
    state = app[PHONE]
    bus = app[BUS]

    async def forwarded_status(data: dict[str, Any]) -> None:
        await call_status(app, data)

    bus.subscribe("phone.status", forwarded_status)
    bus.serve("phone.transfer", lambda data: transfer_callback(app, data))
    bus.serve("phone.transfer_audio", lambda data: transfer_audio(app, data))
    async with contextlib.AsyncExitStack() as resources:
        try:
            state.services = await _start(app, resources)
            state.off_reason = None
            # A streaming agent's answers are spoken sentence by sentence (gateway/streaming.py).
            app[DISPATCHER].live_replies[ChannelKind.PHONE] = state.channel.open_live
            log.info("phone channel ready: point a Twilio number at %s%s",
                     state.settings.public_url, VOICE_PATH)  # fmt: skip
        except GatewayError as exc:
            state.off_reason = str(exc)
            log.warning("phone channel off: %s", exc)
        yield
        app[DISPATCHER].live_replies.pop(ChannelKind.PHONE, None)
        state.services = None
        state.transfers = None
        state.channel.handover = None
        state.off_reason = "the gateway is shutting down"


async def _start(app: web.Application, resources: contextlib.AsyncExitStack) -> CallServices:
    state = app[PHONE]
    settings = state.settings
    if not state.signatures.configured:
        raise ConfigError(
            "GATEWAY_TWILIO_AUTH_TOKEN is unset, so no Twilio request can be checked: every "
            "request to /twilio/* is refused with 403"
        )
    transcriber = app.get(TRANSCRIBER)
    if transcriber is None:
        loaded = await asyncio.to_thread(WhisperTranscriber.from_settings, settings)
        resources.push_async_callback(loaded.close)
        transcriber = loaded
    vad = await asyncio.to_thread(SileroVad)
    judge = await _end_of_turn(settings)
    if judge is not None:
        resources.push_async_callback(judge.close)
    synthesizer = EspeakSynthesizer.from_settings(settings)
    resources.push_async_callback(synthesizer.close)
    await synthesizer.start()
    prompts = await PhonePrompts.render(synthesizer)
    calls_api = TwilioCalls.from_settings(settings)
    if calls_api is None:
        log.warning(
            "GATEWAY_TWILIO_ACCOUNT_SID is unset: when the agent hangs up, the gateway closes "
            "the stream (which ends the call) instead of completing it through the REST API"
        )
    else:
        resources.push_async_callback(calls_api.close)
    _start_transfers(app, resources, synthesizer, calls_api)
    backend = app.get(BACKEND)
    accounts: AccountLookup | None = None
    if settings.phone_link_accounts and callable(getattr(backend, "find_account", None)):
        accounts = backend  # type: ignore[assignment]  # duck-typed: agent/backend.py Backend
    return CallServices(
        store=app[STORE],
        dispatcher=app[DISPATCHER],
        transcriber=transcriber,
        synthesizer=synthesizer,
        prompts=prompts,
        vad=vad,
        endpointer=endpointer_config(settings, smart=judge is not None),
        barge_in_ms=settings.barge_in_min_speech_ms,
        quick_end_ms=settings.phone_quick_end_ms,
        end_of_turn=judge,
        registry=state.channel,
        calls_api=calls_api,
        accounts=accounts,
        metrics=app[METRICS],
    )


async def _end_of_turn(settings: Settings) -> AudioTurnJudge | None:
    """The audio end-of-turn judge (GATEWAY_PHONE_END_OF_TURN=smart), or None for the
    text rule; a model file that is missing falls back to the text rule with a warning,
    one that differs from the release stops start-up (ModelHashMismatch)."""
    if settings.phone_end_of_turn != "smart":
        return None
    try:
        model = await asyncio.to_thread(SmartTurn.load)
    except EndOfTurnModelMissing as exc:
        log.warning("%s; judging the end of turn from the transcript instead", exc)
        return None
    return AudioTurnJudge(
        model, threshold=settings.phone_smart_turn_threshold, short_ms=settings.phone_smart_turn_ms
    )


def _start_transfers(
    app: web.Application,
    resources: contextlib.AsyncExitStack,
    synthesizer: EspeakSynthesizer,
    calls_api: TwilioCalls | None,
) -> None:
    """Warm transfers when GATEWAY_TRANSFER_CALLER_ID is set (and the REST API usable):
    routing's reps are rung on the phone numbers of their profiles (once routing
    attaches itself at its start-up), then the GATEWAY_TRANSFER_NUMBERS lines.
    Otherwise a transfer plays the hold prompt and the call waits in its queue."""
    state = app[PHONE]
    settings = state.settings
    if not settings.transfer_caller_id:
        log.info(
            "GATEWAY_TRANSFER_CALLER_ID is unset: calls handed over are not transferred to "
            "reps' phones (the caller hears the hold prompt and waits in the queue)"
        )
        return
    if calls_api is None:
        log.warning(
            "GATEWAY_TRANSFER_CALLER_ID is set but GATEWAY_TWILIO_ACCOUNT_SID is not: calls "
            "cannot be transferred (the caller only hears the hold prompt)"
        )
        return
    targets = RoutingTargets(ConfiguredTargets.from_settings(settings))
    audio = SignedAudio(
        settings.data_dir / "transfer-audio", app[SECRET_KEY], settings.public_url, synthesizer,
        ttl_s=settings.transfer_audio_ttl_s,
    )  # fmt: skip
    audio.reset()
    transfers = WarmTransfers(
        store=app[STORE], calls=calls_api, audio=audio, targets=targets, settings=settings,
        metrics=app[METRICS], node_id=app[BUS].node_id if app[BUS].shared else "",
        listeners=state.channel.transfer_listeners,
    )  # fmt: skip
    resources.push_async_callback(transfers.close)
    state.transfers = transfers
    state.channel.handover = transfers
    if state.channel.routing is not None:
        transfers.attach_routing(state.channel.routing)
    log.info("warm transfers on: reps' phones from %s, then lines %s",
             settings.transfer_caller_id, settings.transfer_numbers or "(none)")  # fmt: skip


async def _end_calls(app: web.Application) -> None:
    # Streams would otherwise hold shutdown open for as long as the calls last.
    await app[PHONE].channel.close_all()


__all__ = ["endpointer_config", "setup_phone"]
