"""Voice activity detection and endpointing on phone audio.

Synthetic signals check what must never count as speech; real recordings
(`../shared/speech`, skipped when absent) check the boundaries, the speed of
`SpeechStarted`, pauses, short sounds and the maximum length. All audio goes
through what a call does to it: 8 kHz, μ-law, 20 ms frames.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from channels.speech.audio import (
    MULAW_RATE,
    STT_RATE,
    Int16Array,
    float32_to_pcm16,
    mulaw_decode,
    mulaw_encode,
    pcm16_to_float32,
    read_mulaw_wav,
    resample,
    split_frames,
)
from channels.speech.silero import WINDOW, SileroVad, VadState, shared_vad, vad_model_path
from channels.speech.vad import (
    Endpointer,
    EndpointerConfig,
    EndpointEvent,
    SpeechDiscarded,
    SpeechStarted,
    UtteranceEnded,
)
from gateway.errors import ConfigError
from tests.channels.phone.calls import FIXTURES
from tests.channels.phone.speech import load_phone, run_call, silence, speech_bounds, trimmed

RNG_SEED = 20240611


def utterances(events: list[tuple[int, EndpointEvent]]) -> list[UtteranceEnded]:
    return [e for _, e in events if isinstance(e, UtteranceEnded)]


def kinds(events: list[tuple[int, EndpointEvent]]) -> list[str]:
    return [type(e).__name__ for _, e in events]


def at_8k(samples: np.ndarray) -> Int16Array:
    return float32_to_pcm16(samples.astype(np.float32))


# --------------------------------------------------------------- the model


def test_model_ships_with_faster_whisper() -> None:
    path = vad_model_path()
    assert path.is_file() and path.name == "silero_vad_v6.onnx"
    assert "faster_whisper" in path.parts


@pytest.mark.parametrize("source", ["synthetic", "speech"])
def test_streaming_gives_faster_whispers_probabilities(source: str) -> None:
    from faster_whisper.vad import get_vad_model

    if source == "speech":
        audio = pcm16_to_float32(resample(load_phone("cards_005"), MULAW_RATE, STT_RATE))
    else:
        rng = np.random.default_rng(RNG_SEED)
        t = np.arange(STT_RATE * 3) / STT_RATE
        buzz = np.sign(np.sin(2 * np.pi * 140 * t)) * (np.sin(2 * np.pi * 0.7 * t) > 0)
        audio = (0.2 * buzz + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
    audio = audio[: audio.size // WINDOW * WINDOW]
    # faster-whisper scores the whole array in one batch, from a fresh state.
    batch = np.asarray(get_vad_model()(audio)).reshape(-1)
    vad, state = shared_vad(), VadState()
    streamed = [vad.probability(audio[i : i + WINDOW], state) for i in range(0, audio.size, WINDOW)]
    assert np.allclose(streamed, batch, atol=1e-5)
    if source == "speech":
        assert np.ptp(batch) > 0.5  # the comparison covered speech and silence


def test_bad_model_path() -> None:
    with pytest.raises(ConfigError, match="no Silero VAD model"):
        SileroVad("/nonexistent/silero.onnx")


# ------------------------------------------------------ what is not speech


@pytest.mark.parametrize(
    ("kind", "dbfs"),
    [("digital silence", 0), ("white", -50), ("white", -35), ("brown", -35), ("hum", -30)],
)
def test_silence_and_line_noise_produce_nothing(kind: str, dbfs: float) -> None:
    rng = np.random.default_rng(RNG_SEED)
    n = MULAW_RATE * 5
    level = 10 ** (dbfs / 20)
    if kind == "brown":  # a random walk, its drift removed: rumble
        walk = np.cumsum(rng.standard_normal(n))
        noise = walk - np.convolve(walk, np.ones(400) / 400, mode="same")
        noise = noise / np.sqrt(np.mean(noise**2)) * level
    elif kind == "hum":  # mains hum on the line
        noise = level * np.sqrt(2) * np.sin(2 * np.pi * 60 * np.arange(n) / MULAW_RATE)
    elif kind == "white":
        noise = level * rng.standard_normal(n)
    else:
        noise = np.zeros(n)
    assert run_call(at_8k(noise)) == []


@pytest.mark.parametrize("kind", ["clicks", "noise burst", "cough"])
def test_clicks_and_bursts_are_not_utterances(kind: str) -> None:
    rng = np.random.default_rng(RNG_SEED)
    signal = np.zeros(MULAW_RATE * 3)
    start, n = MULAW_RATE, 800  # 100 ms, one second in
    t = np.arange(n) / MULAW_RATE
    if kind == "clicks":
        signal[start : start + 8] = 0.9
        signal[start + 400 : start + 408] = -0.9
    elif kind == "noise burst":
        signal[start : start + n] = 0.5 * rng.standard_normal(n) * np.exp(-t / 0.04)
    else:  # a sharp attack, a rough decaying noise with some voicing in it
        envelope = np.exp(-t / 0.03) * (1 - np.exp(-t / 0.005))
        rough = np.convolve(rng.standard_normal(n), np.ones(4) / 4, mode="same")
        signal[start : start + n] = 0.8 * envelope * (rough + 0.5 * np.sin(2 * np.pi * 180 * t))
    assert utterances(run_call(at_8k(signal))) == []


# ---------------------------------------------------------------- settings


def test_config_defaults_and_validation() -> None:
    config = EndpointerConfig()
    assert (config.end_silence_ms, config.min_speech_ms, config.max_utterance_ms) == (
        600,
        250,
        15_000,
    )
    assert config.silence_threshold == pytest.approx(0.35)
    assert EndpointerConfig(threshold=0.6, neg_threshold=0.2).silence_threshold == 0.2
    for bad in (
        {"threshold": 1.5},
        {"neg_threshold": 0.9},
        {"end_silence_ms": 10},
        {"max_utterance_ms": 200},
        {"pre_roll_ms": -1},
    ):
        with pytest.raises(ConfigError):
            EndpointerConfig(**bad)
    with pytest.raises(ConfigError):
        Endpointer(sample_rate=44100)


def test_feed_checks_its_input() -> None:
    endpointer = Endpointer()
    with pytest.raises(TypeError):
        endpointer.feed(np.zeros(160, dtype=np.float32))
    assert endpointer.feed(np.zeros(0, dtype=np.int16)) == []
    assert endpointer.feed_mulaw(b"\xff" * 160) == []
    assert endpointer.position_ms == 20 and not endpointer.in_speech
    with pytest.raises(ValueError):
        Endpointer(sample_rate=STT_RATE).feed_mulaw(b"\xff" * 160)


# ------------------------------------------------------------- real speech


def two_utterances() -> tuple[Int16Array, list[tuple[int, int]]]:
    """Two speakers, 1.5 s apart, with silence around: (audio, real bounds in ms)."""
    first, second = trimmed("sb_spk1_snt1"), trimmed("sb_spk2_snt4")
    parts = [silence(1000), first, silence(1500), second, silence(1500)]
    a0 = 1000
    a1 = a0 + len(first) * 1000 // MULAW_RATE
    b0 = a1 + 1500
    b1 = b0 + len(second) * 1000 // MULAW_RATE
    return np.concatenate(parts), [(a0, a1), (b0, b1)]


def test_two_utterances_are_found_near_their_real_bounds() -> None:
    audio, real = two_utterances()
    events = run_call(audio)
    assert kinds(events) == ["SpeechStarted", "UtteranceEnded"] * 2
    found = utterances(events)
    for utterance, (start, end) in zip(found, real, strict=True):
        assert abs(utterance.start_ms - start) <= 300
        assert abs(utterance.end_ms - end) <= 300
        assert utterance.reason == "silence"
        # 16 kHz audio from 300 ms before the onset to 200 ms after the end.
        assert utterance.audio_start_ms == utterance.start_ms - 300
        assert len(utterance.audio) == (utterance.end_ms + 200 - utterance.audio_start_ms) * 16
        lead = utterance.audio[: 200 * 16].astype(np.float64)  # in the silence before
        body = utterance.audio[300 * 16 :].astype(np.float64)
        assert np.sqrt(np.mean(lead**2)) < 0.05 * np.sqrt(np.mean(body**2))
    # Each end is reported once the caller has been quiet for end_silence_ms.
    ended_at = [pos for pos, e in events if isinstance(e, UtteranceEnded)]
    for pos, utterance in zip(ended_at, found, strict=True):
        assert 600 <= pos - utterance.end_ms <= 600 + 60


@pytest.mark.parametrize(
    "item", ["sb_spk1_snt1", "sb_spk2_snt4", "goforward", "cards_001", "libri_1995-1837-0001"]
)
def test_speech_started_comes_quickly(item: str) -> None:
    events = run_call(np.concatenate([silence(1000), trimmed(item), silence(1000)]))
    position, started = events[0]
    assert isinstance(started, SpeechStarted)
    assert 1000 - 50 <= started.at_ms <= 1000 + 200  # onset, as estimated
    assert position - 1000 <= 300  # delivered within 300 ms of the real onset
    assert started.detected_ms <= position


@pytest.mark.parametrize("item", ["libri_1995-1837-0001", "cards_005"])
def test_pauses_within_a_sentence_do_not_end_the_turn(item: str) -> None:
    speech = load_phone(item)
    audio = np.concatenate([silence(500), speech, silence(1000)])
    # The recording does pause: a short end-of-turn silence splits it ...
    assert len(utterances(run_call(audio, EndpointerConfig(end_silence_ms=250)))) >= 2
    # ... but the default keeps the sentence whole.
    events = run_call(audio)
    assert kinds(events) == ["SpeechStarted", "UtteranceEnded"]
    (whole,) = utterances(events)
    assert whole.duration_ms >= len(speech) * 1000 // MULAW_RATE - 1000


def test_short_speech_is_not_an_utterance() -> None:
    speech = load_phone("libri_1995-1837-0001")
    for offset_ms in (1000, 2000, 3000, 5000):
        snippet = speech[offset_ms * 8 : (offset_ms + 100) * 8]  # 100 ms of a word: "mm"
        events = run_call(np.concatenate([silence(1000), snippet, silence(1500)]))
        assert utterances(events) == []
        # A confirmed start that came to nothing is withdrawn.
        assert kinds(events) in ([], ["SpeechStarted", "SpeechDiscarded"])
        if events:
            discarded = events[1][1]
            assert isinstance(discarded, SpeechDiscarded) and discarded.end_ms <= 1300


def test_continuous_speech_is_cut_at_the_maximum_length() -> None:
    items = ["libri_1995-1837-0001", "librivox_0870", "librivox_0890", "librivox_0920"]
    speech = np.concatenate([trimmed(item) for item in items])[: 20 * MULAW_RATE]
    events = run_call(np.concatenate([silence(500), speech, silence(1000)]))
    assert kinds(events)[:4] == [
        "SpeechStarted",
        "UtteranceEnded",
        "SpeechStarted",
        "UtteranceEnded",
    ]
    first, second = utterances(events)[:2]
    assert first.reason == "max_length"
    assert abs(first.duration_ms - 15_000) <= 32
    cut_at = next(pos for pos, e in events if isinstance(e, UtteranceEnded))
    assert 0 <= cut_at - first.end_ms <= 40  # cut as it happens, not after a silence
    # The rest follows seamlessly: no audio lost or repeated at the cut.
    assert second.start_ms == first.end_ms == second.audio_start_ms
    assert len(first.audio) == (first.end_ms - first.audio_start_ms) * 16
    assert second.reason == "silence" and second.end_ms >= 500 + 19_000


def test_finish_ends_an_utterance_in_progress() -> None:
    endpointer = Endpointer()
    events = run_call(np.concatenate([silence(500), trimmed("goforward")]), endpointer=endpointer)
    assert kinds(events) == ["SpeechStarted", "UtteranceEnded"]
    assert utterances(events)[0].reason == "stream_end"
    assert not endpointer.in_speech and endpointer.finish() == []


def test_the_tentative_utterance_is_the_one_the_silence_then_ends() -> None:
    # A sentence, a 400 ms pause (longer than the post-roll, shorter than the end of
    # turn), the sentence again, then silence: one utterance. Once a silence has
    # lasted `settle_ms`, `tentative()` holds what that silence would end; the
    # last one is the utterance that comes out (bounds, and samples so far).
    words = mulaw_decode(read_mulaw_wav(FIXTURES / "order_status.wav")[0])
    first, last = speech_bounds(words)
    sentence = words[first:last]
    endpointer = Endpointer()
    settled: list[tuple[int, int]] = []
    tentative: list[UtteranceEnded] = []
    ended: list[UtteranceEnded] = []
    audio = np.concatenate([silence(500), sentence, silence(400), sentence, silence(1000)])
    for frame in split_frames(mulaw_encode(audio)):
        ended += [e for e in endpointer.feed_mulaw(frame) if isinstance(e, UtteranceEnded)]
        bounds = endpointer.settling
        if bounds is not None and bounds not in settled:
            settled.append(bounds)
            got = endpointer.tentative()
            assert got is not None
            tentative.append(got)
        elif bounds is None:
            assert endpointer.tentative() is None
    [utterance] = ended
    assert len(settled) >= 2  # the pause settled, and the caller spoke on
    assert len({start for start, _ in settled}) == 1
    assert [end for _, end in settled] == sorted({end for _, end in settled})
    assert settled[-1] == (utterance.start_ms, utterance.end_ms)
    final = tentative[-1]
    assert (final.audio_start_ms, final.reason) == (utterance.audio_start_ms, utterance.reason)
    # Settled after 100 ms of silence: the same audio, less the rest of the post-roll
    # (200 ms) that the utterance goes on to carry.
    # (Settling is seen frame by frame, so up to a frame later than 100 ms.)
    assert 60 * 16 <= utterance.audio.size - final.audio.size <= 100 * 16
    # Resampled on its own, the shorter audio differs only at its very end.
    size = final.audio.size - 20 * 16
    assert np.array_equal(final.audio[:size], utterance.audio[:size])


def test_end_now_ends_the_settling_utterance_as_tentative_had_it() -> None:
    words = mulaw_decode(read_mulaw_wav(FIXTURES / "order_status.wav")[0])
    first, last = speech_bounds(words)
    endpointer = Endpointer()
    assert endpointer.end_now() == []  # nothing settling: nothing happens
    audio = np.concatenate([silence(500), words[first:last], silence(1000)])
    ended: list[EndpointEvent] = []
    for frame in split_frames(mulaw_encode(audio)):
        if ended:
            # After the early end, the rest of the silence ends nothing more.
            assert endpointer.feed_mulaw(frame) == []  # (no pause of 300 ms inside)
            continue
        fed = endpointer.feed_mulaw(frame)
        assert not any(isinstance(e, UtteranceEnded) for e in fed)  # ended early below
        bounds = endpointer.settling
        if bounds is not None and endpointer.position_ms - bounds[1] >= 300:
            expected = endpointer.tentative()
            assert expected is not None
            ended = endpointer.end_now()
            [utterance] = ended
            assert isinstance(utterance, UtteranceEnded) and utterance.reason == "complete"
            assert (utterance.start_ms, utterance.end_ms, utterance.audio_start_ms) == (
                expected.start_ms, expected.end_ms, expected.audio_start_ms
            )  # fmt: skip
            assert np.array_equal(utterance.audio, expected.audio)
            assert endpointer.settling is None and not endpointer.in_speech
    assert ended, "the silence after the sentence settled"
    assert endpointer.finish() == []


def summary(events: list[tuple[int, EndpointEvent]]) -> list[tuple[int, object]]:
    """Events comparable with ==: utterances by their bounds (their audio is an array)."""
    return [
        (pos, (e.start_ms, e.end_ms, e.reason) if isinstance(e, UtteranceEnded) else e)
        for pos, e in events
    ]


def test_calls_sharing_a_session_keep_their_own_state() -> None:
    audio_a, _ = two_utterances()
    audio_b = np.concatenate([silence(300), load_phone("cards_005"), silence(2000)])
    alone_a, alone_b = run_call(audio_a), run_call(audio_b)
    vad = shared_vad()
    a, b = Endpointer(vad=vad), Endpointer(vad=vad)
    got_a: list[tuple[int, EndpointEvent]] = []
    got_b: list[tuple[int, EndpointEvent]] = []
    frames_a, frames_b = split_frames(mulaw_encode(audio_a)), split_frames(mulaw_encode(audio_b))
    for i in range(max(len(frames_a), len(frames_b))):  # interleaved, frame by frame
        if i < len(frames_a):
            got_a.extend((a.position_ms, e) for e in a.feed_mulaw(frames_a[i]))
        if i < len(frames_b):
            got_b.extend((b.position_ms, e) for e in b.feed_mulaw(frames_b[i]))
    got_a.extend((a.position_ms, e) for e in a.finish())
    got_b.extend((b.position_ms, e) for e in b.finish())
    assert summary(got_a) == summary(alone_a)
    assert summary(got_b) == summary(alone_b)


def test_16khz_input() -> None:
    audio, real = two_utterances()
    wide = resample(audio, MULAW_RATE, STT_RATE)
    endpointer = Endpointer(sample_rate=STT_RATE)
    events: list[EndpointEvent] = []
    for i in range(0, len(wide), 320):
        events.extend(endpointer.feed(wide[i : i + 320]))
    events.extend(endpointer.finish())
    found = [e for e in events if isinstance(e, UtteranceEnded)]
    assert len(found) == 2
    for utterance, (start, end) in zip(found, real, strict=True):
        assert abs(utterance.start_ms - start) <= 300 and abs(utterance.end_ms - end) <= 300
        assert utterance.audio_float32().dtype == np.float32


def test_a_frame_costs_little() -> None:
    audio, _ = two_utterances()
    frames = split_frames(mulaw_encode(audio))
    endpointer = Endpointer()
    started = time.perf_counter()
    for frame in frames:
        endpointer.feed_mulaw(frame)
    per_frame_s = (time.perf_counter() - started) / len(frames)
    # ~60 µs measured; 2 ms (a tenth of real time) leaves room for a loaded CI machine.
    assert per_frame_s < 0.002


def test_audio_is_float_ready_for_whisper() -> None:
    audio, _ = two_utterances()
    utterance = utterances(run_call(audio))[0]
    floats = utterance.audio_float32()
    assert np.array_equal(floats, pcm16_to_float32(utterance.audio))
    assert float(np.abs(floats).max()) <= 1.0
