"""Warm transfer of a call: the state machine driven by Twilio's signed callbacks.

The real app (store, espeak-ng, REST client) talks to a local server speaking
Twilio's REST API (`FakeTwilioRest`, the real `twilio` client pointed at it);
the tests play Twilio's part with signed status callbacks, `<Gather>` results
and conference events through the aiohttp test client.
"""

from __future__ import annotations

import io
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from pytest_aiohttp import AiohttpClient

from channels.phone.transfer.state import TransferState
from channels.speech.audio import MULAW_RATE, resample
from channels.speech.tts import EspeakSynthesizer, split_sentences
from gateway.app import SETTINGS, STORE
from gateway.models import ConversationState
from tests.channels.phone.calls import PUBLIC_URL, FakeTwilioRest, signatures
from tests.channels.phone.transfers import (
    CALLER_ID,
    CALLER_SID,
    JANE,
    REPS,
    Env,
    call_status,
    conference_event,
    conference_of,
    gather_of,
    gather_result,
    kinds,
    queued_phone_conversation,
    transfer_app,
    transfer_events,
    transfers_of,
    twilio_post,
    xml,
)


def loudness(pcm: NDArray[np.int16]) -> NDArray[np.float64]:
    """RMS of each 20 ms frame."""
    frames = pcm[: pcm.size // 160 * 160].astype(np.float64).reshape(-1, 160)
    return np.sqrt((frames**2).mean(axis=1))


@pytest.fixture
async def env(
    tmp_path: Path, aiohttp_client: AiohttpClient, twilio_rest: FakeTwilioRest
) -> AsyncIterator[Env]:
    api = await twilio_rest.start()
    app = transfer_app(tmp_path, api)
    client = await aiohttp_client(app)
    twilio_rest.live.add(CALLER_SID)
    yield Env(app, client, twilio_rest, app[STORE], transfers_of(app))


async def test_happy_path_rings_briefs_connects_and_completes(env: Env) -> None:
    conversation = await queued_phone_conversation(env.store)
    transfer = await env.transfers.start(CALLER_SID, conversation.id)
    assert transfer.state is TransferState.RINGING

    # The caller was moved into a conference they cannot start: wait music until the rep.
    [(moved, hold)] = env.rest.redirects
    assert moved == CALLER_SID
    held = conference_of(hold)
    assert held.get("startConferenceOnEnter") == "false"
    assert held.get("endConferenceOnExit") == "true"
    assert held.get("statusCallbackEvent") == "start end join leave"
    conference_url = held.get("statusCallback", "")
    assert conference_url == f"{PUBLIC_URL}/twilio/transfer/{transfer.id}/conference"

    # The first rep is rung from our Twilio number; progress comes back to us.
    [rep_call] = env.rest.created
    form = rep_call.form
    assert (form["To"], form["From"], form["Timeout"]) == (REPS[0], CALLER_ID, "20")
    assert rep_call.status_callback_events == ("initiated", "ringing", "answered", "completed")
    status_url = form["StatusCallback"]
    assert form["StatusCallbackMethod"] == "POST"
    answer_url, brief_url = gather_of(form["Twiml"])
    assert answer_url == f"{PUBLIC_URL}/twilio/transfer/{transfer.id}/answer"
    assert brief_url.startswith(f"{PUBLIC_URL}/twilio/transfer/audio/")

    for sequence, status in enumerate(("initiated", "ringing", "in-progress"), start=1):
        got = await twilio_post(env.client, status_url, call_status(rep_call.sid, status, sequence))
        assert got.status == 204
    assert transfer.state is TransferState.BRIEFING
    audio = await env.client.get(brief_url.removeprefix(PUBLIC_URL))
    assert audio.status == 200 and audio.content_type == "audio/wav"

    # 1 accepts: the rep joins the caller's conference, and ends it when they leave.
    accepted = await twilio_post(env.client, answer_url, gather_result(rep_call.sid, "1"))
    joined = conference_of(await accepted.text())
    assert joined.text == held.text == f"transfer-{transfer.id}"
    assert joined.get("startConferenceOnEnter") == "true"
    assert transfer.state is TransferState.CONNECTED
    assert (await env.store.get_conversation(conversation.id)).state is ConversationState.WITH_REP

    done = await twilio_post(env.client, status_url, call_status(rep_call.sid, "completed", 4))
    assert done.status == 204
    assert transfer.state is TransferState.COMPLETED
    events = await transfer_events(env.store, conversation.id)
    assert [e.kind for e in events] == [
        "transfer.requested", "transfer.ringing", "transfer.briefing", "transfer.connected",
        "transfer.completed",
    ]  # fmt: skip
    assert all(e.data["transfer_id"] == transfer.id for e in events)
    assert all(e.data["call_sid"] == CALLER_SID for e in events)
    assert "Jane Doe is on the line" in events[0].data["brief_text"]
    assert "Wants a refund (order 1001)" in events[0].data["brief_text"]
    assert events[0].data["reps"] == [f"phone:{n}" for n in REPS]
    assert {e.data["rep_call_sid"] for e in events[1:]} == {rep_call.sid}
    assert events[-1].data["reason"] == "the rep hung up"
    # The brief is gone with the transfer.
    assert (await env.client.get(brief_url.removeprefix(PUBLIC_URL))).status == 404


async def test_no_answer_and_a_decline_move_on_until_a_callback_is_offered(env: Env) -> None:
    conversation = await queued_phone_conversation(env.store)
    transfer = await env.transfers.start(CALLER_SID, conversation.id)
    first = env.rest.created[0]
    status_url = first.form["StatusCallback"]

    # The first rep does not answer: the second one rings.
    await twilio_post(env.client, status_url, call_status(first.sid, "ringing", 1))
    await twilio_post(env.client, status_url, call_status(first.sid, "no-answer", 2))
    second = env.rest.created[1]
    assert second.form["To"] == REPS[1]
    assert transfer.state is TransferState.RINGING and transfer.rep_sid == second.sid

    # The second answers, hears the brief, and presses nothing: declined.
    await twilio_post(env.client, status_url, call_status(second.sid, "in-progress", 1, REPS[1]))
    answer_url, _ = gather_of(second.form["Twiml"])
    declined = await twilio_post(env.client, answer_url, gather_result(second.sid, ""))
    assert xml(await declined.text()).find("./Hangup") is not None

    # Nobody left: the caller leaves the conference for a callback offer.
    assert transfer.state is TransferState.CALLBACK_OFFERED
    assert len(env.rest.created) == 2
    (_, _), (moved, offer) = env.rest.redirects
    assert moved == CALLER_SID
    callback_url, offer_url = gather_of(offer)
    assert callback_url == f"{PUBLIC_URL}/twilio/transfer/{transfer.id}/callback"
    spoken = await env.client.get(offer_url.removeprefix(PUBLIC_URL))
    assert spoken.status == 200 and len(await spoken.read()) > MULAW_RATE  # > 0.5 s of audio
    conversation = await env.store.get_conversation(conversation.id)
    assert conversation.state is ConversationState.QUEUED and conversation.brief is not None

    # The caller presses 1: a callback is asked for (and a retry changes nothing).
    for _ in range(2):
        thanks = await twilio_post(env.client, callback_url, gather_result(CALLER_SID, "1"))
        root = xml(await thanks.text())
        assert root.find("./Play") is not None and root.find("./Hangup") is not None
    events = await transfer_events(env.store, conversation.id)
    assert [e.kind for e in events] == [
        "transfer.requested", "transfer.ringing", "transfer.rep_failed", "transfer.ringing",
        "transfer.briefing", "transfer.rep_failed", "transfer.callback_offered",
        "transfer.callback_requested",
    ]  # fmt: skip
    assert [e.data["outcome"] for e in events if e.kind == "transfer.rep_failed"] == [
        "no-answer", "declined",
    ]  # fmt: skip
    assert events[-1].data["phone"] == JANE
    metrics = (await (await env.client.get("/metrics")).text()).splitlines()
    for step, count in (("ringing", 2), ("rep_no-answer", 1), ("rep_declined", 1),
                        ("callback_offered", 1), ("callback_requested", 1)):  # fmt: skip
        assert f'gateway_transfer_steps_total{{step="{step}"}} {count}.0' in metrics
    # The first rep's late `completed` belongs to an earlier attempt: ignored.
    await twilio_post(env.client, status_url, call_status(first.sid, "completed", 3))
    assert len(await transfer_events(env.store, conversation.id)) == len(events)


async def test_refused_and_busy_reps_end_in_a_declined_callback(env: Env) -> None:
    conversation = await queued_phone_conversation(env.store)
    env.rest.refuse_next_call(400, 21217, "Phone number does not appear to be valid")
    transfer = await env.transfers.start(CALLER_SID, conversation.id)
    [second] = env.rest.created  # the first number was refused by Twilio
    assert second.form["To"] == REPS[1]
    await twilio_post(
        env.client, second.form["StatusCallback"], call_status(second.sid, "busy", 1, REPS[1])
    )
    assert transfer.state is TransferState.CALLBACK_OFFERED
    callback_url, _ = gather_of(env.rest.redirects[-1][1])
    bye = await twilio_post(env.client, callback_url, gather_result(CALLER_SID, ""))
    assert xml(await bye.text()).find("./Hangup") is not None
    events = await transfer_events(env.store, conversation.id)
    failures = [e.data for e in events if e.kind == "transfer.rep_failed"]
    assert [f["outcome"] for f in failures] == ["failed", "busy"]
    assert "21217" in failures[0]["detail"]
    assert events[-1].kind == "transfer.callback_declined"


async def test_forged_callbacks_are_refused_and_change_nothing(env: Env) -> None:
    conversation = await queued_phone_conversation(env.store)
    transfer = await env.transfers.start(CALLER_SID, conversation.id)
    rep = env.rest.created[0]
    status_url = rep.form["StatusCallback"]
    answer_url, _ = gather_of(rep.form["Twiml"])
    path = status_url.removeprefix(PUBLIC_URL)
    params = call_status(rep.sid, "in-progress", 1)

    unsigned = await env.client.post(path, data=params)
    assert unsigned.status == 403
    other_url = status_url.replace(transfer.id, "0" * 16)
    signed_elsewhere = {"X-Twilio-Signature": signatures().sign(other_url, params)}
    assert (await env.client.post(path, data=params, headers=signed_elsewhere)).status == 403
    tampered = {"X-Twilio-Signature": signatures().sign(status_url, params)}
    forged = {**params, "CallStatus": "completed"}
    assert (await env.client.post(path, data=forged, headers=tampered)).status == 403
    other_account = {**gather_result(rep.sid, "1"), "AccountSid": "AC" + "9" * 32}
    assert (await twilio_post(env.client, answer_url, other_account)).status == 403

    assert transfer.state is TransferState.RINGING
    assert await kinds(env.store, conversation.id) == ["transfer.requested", "transfer.ringing"]


async def test_duplicate_and_late_callbacks_are_ignored(env: Env) -> None:
    conversation = await queued_phone_conversation(env.store)
    transfer = await env.transfers.start(CALLER_SID, conversation.id)
    rep = env.rest.created[0]
    status_url = rep.form["StatusCallback"]
    answer_url, _ = gather_of(rep.form["Twiml"])

    # The answer comes before the `answered` callback (they race): briefing, then connected.
    first = await twilio_post(env.client, answer_url, gather_result(rep.sid, "1"))
    again = await twilio_post(env.client, answer_url, gather_result(rep.sid, "1"))  # a retry
    assert await first.text() == await again.text()
    for sequence, status in enumerate(("ringing", "in-progress", "no-answer"), start=1):
        late = await twilio_post(env.client, status_url, call_status(rep.sid, status, sequence))
        assert late.status == 204
    assert transfer.state is TransferState.CONNECTED
    # A second start for the same call is the same transfer.
    assert await env.transfers.start(CALLER_SID, conversation.id) is transfer
    assert len(env.rest.created) == 1 and len(env.rest.redirects) == 1

    # The caller hangs up: the conference tells us; the rep's own `completed` is then late.
    leave = conference_event("participant-leave", CALLER_SID, transfer.conference)
    conference_url = conference_of(env.rest.redirects[0][1]).get("statusCallback", "")
    assert (await twilio_post(env.client, conference_url, leave)).status == 204
    end = conference_event("conference-end", "", transfer.conference)
    await twilio_post(env.client, conference_url, end)
    await twilio_post(env.client, status_url, call_status(rep.sid, "completed", 4))
    assert transfer.state is TransferState.COMPLETED
    assert await kinds(env.store, conversation.id) == [
        "transfer.requested", "transfer.ringing", "transfer.briefing", "transfer.connected",
        "transfer.completed",
    ]  # fmt: skip


async def test_a_caller_who_hangs_up_while_a_rep_rings_abandons_the_transfer(env: Env) -> None:
    conversation = await queued_phone_conversation(env.store)
    transfer = await env.transfers.start(CALLER_SID, conversation.id)
    rep = env.rest.created[0]
    # The caller's own status callback (the number's voice status URL) says they hung up.
    status = {"AccountSid": env.rest.account_sid, "CallSid": CALLER_SID, "CallStatus": "completed",
              "From": JANE, "To": "+15550001234", "Direction": "inbound"}  # fmt: skip
    assert (await twilio_post(env.client, f"{PUBLIC_URL}/twilio/voice/status", status)).ok
    assert transfer.state is TransferState.ABANDONED
    # The rep's phone stops ringing (completed through the REST API).
    assert [(sid, form) for _, sid, form in env.rest.requests if form.get("Status")] == [
        (rep.sid, {"Status": "completed"})
    ]
    events = await transfer_events(env.store, conversation.id)
    assert events[-1].kind == "transfer.abandoned"
    assert events[-1].data["reason"] == "the caller hung up (completed)"


async def test_the_brief_url_is_signed_and_expires(env: Env) -> None:
    conversation = await queued_phone_conversation(env.store)
    transfer = await env.transfers.start(CALLER_SID, conversation.id)
    _, brief_url = gather_of(env.rest.created[0].form["Twiml"])
    path = brief_url.removeprefix(PUBLIC_URL)

    served = await env.client.get(path)
    assert served.status == 200 and served.headers["Content-Type"] == "audio/wav"
    with wave.open(io.BytesIO(await served.read())) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, MULAW_RATE)
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    # It is espeak-ng speaking the brief: it starts with the first sentence as the same
    # voice renders it (espeak-ng varies by a few samples from one render to the next, so
    # their 20 ms loudness envelopes are compared), and lasts as long as the whole text.
    [requested] = [e for e in await transfer_events(env.store, conversation.id)
                   if e.kind == "transfer.requested"]  # fmt: skip
    sentences = split_sentences(requested.data["brief_text"])
    assert sentences[:2] == ["Transfer from the billing queue.", "Jane Doe is on the line."]
    synth = EspeakSynthesizer.from_settings(env.app[SETTINGS])
    await synth.start()
    try:
        speeches = [await synth.synthesize(sentence) for sentence in sentences]
    finally:
        await synth.close()
    rendered = [
        resample(np.frombuffer(s.pcm, dtype="<i2"), s.sample_rate, MULAW_RATE) for s in speeches
    ]
    start = loudness(pcm[: rendered[0].size])
    assert np.corrcoef(start, loudness(rendered[0]))[0, 1] > 0.95
    other = loudness(rendered[1])  # another sentence does not look alike
    assert np.corrcoef(start[: other.size], other)[0, 1] < 0.8
    spoken = sum(r.size for r in rendered)
    pauses = MULAW_RATE * len(sentences) // 4
    assert spoken - MULAW_RATE // 10 < pcm.size < spoken + pauses + MULAW_RATE // 10

    # A forged token, one signed with another key, and an expired one are refused.
    token = path.rsplit("/", 1)[1].removesuffix(".wav")
    cut = len(token) - 3
    forged = path.replace(
        token, token[:cut] + ("A" if token[cut] != "A" else "B") + token[cut + 1 :]
    )
    assert (await env.client.get(forged)).status == 403
    old = env.transfers.audio.url(transfer.brief_audio, now=time.time() - 3600)
    assert (await env.client.get(old.removeprefix(PUBLIC_URL))).status == 403
    name = path.replace(token, "brief-" + transfer.id)
    assert (await env.client.get(name)).status == 403
    assert (await env.client.get(path)).status == 200


async def test_a_call_already_over_is_not_transferred(env: Env) -> None:
    conversation = await queued_phone_conversation(env.store)
    env.rest.live.discard(CALLER_SID)  # Twilio answers 404, error 20404
    transfer = await env.transfers.start(CALLER_SID, conversation.id)
    assert transfer.state is TransferState.ABANDONED
    assert env.rest.created == []  # nobody was rung
    assert await kinds(env.store, conversation.id) == ["transfer.requested", "transfer.abandoned"]
