"""μ-law tables, resampling, framing and WAV files of the phone channel."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from channels.speech.audio import (
    FRAME_BYTES,
    MULAW_SILENCE,
    MulawFramer,
    StreamResampler,
    float32_to_pcm16,
    mulaw_decode,
    mulaw_encode,
    mulaw_to_pcm,
    pcm16_to_float32,
    pcm_to_mulaw,
    read_mulaw_wav,
    read_wav,
    resample,
    split_frames,
    write_mulaw_wav,
    write_pcm_wav,
)

ALL_CODES = bytes(range(256))
ALL_INT16 = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)


def codes_of(pcm: list[int]) -> list[int]:
    return list(mulaw_encode(np.array(pcm, dtype=np.int16)))


def dominant_hz(signal: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(signal.astype(np.float64) * np.hanning(len(signal))))
    return float(np.fft.rfftfreq(len(signal), 1 / rate)[np.argmax(spectrum)])


def sine(hz: float, rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return float32_to_pcm16((amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32))


# ------------------------------------------------------------------- μ-law


def test_decode_known_values() -> None:
    # G.711 μ-law: codes are stored inverted; 0xFF/0x7F are ±0, 0x80/0x00 the peaks.
    table = mulaw_decode(ALL_CODES)
    assert table.dtype == np.int16
    assert (table[0xFF], table[0x7F]) == (0, 0)
    assert (table[0x80], table[0x00]) == (32124, -32124)
    assert (table[0xFE], table[0x7E]) == (8, -8)
    assert table[0xEF] == 132  # first step of segment 1
    assert table[0xF0] == 120  # last step of segment 0


def test_decode_is_symmetric_and_monotonic() -> None:
    table = mulaw_decode(ALL_CODES).astype(np.int32)
    assert np.array_equal(table[0x80:], -table[:0x80])
    # Within each sign, larger inverted code means larger magnitude.
    positive = table[0x80:][::-1]
    assert np.all(np.diff(positive) > 0)


def test_encode_known_values() -> None:
    assert codes_of([0, -1, 32767, -32768]) == [0xFF, 0x7F, 0x80, 0x00]
    assert codes_of([32124, -32124, 8, -8, 132, -132]) == [0x80, 0x00, 0xFE, 0x7E, 0xEF, 0x6F]
    # G.191 takes the one's complement of negatives, so -1..-4 mirror 0..3 exactly.
    assert codes_of([0, 1, 2, 3, 4]) == [0xFF, 0xFF, 0xFF, 0xFF, 0xFE]
    assert codes_of([-1, -2, -3, -4, -5]) == [0x7F, 0x7F, 0x7F, 0x7F, 0x7E]


def test_round_trip_of_every_code_is_stable() -> None:
    once = mulaw_encode(mulaw_decode(ALL_CODES))
    # Every code comes back as itself except negative zero, which becomes +0.
    assert [c for c in range(256) if once[c] != c] == [0x7F]
    assert once[0x7F] == 0xFF
    assert mulaw_encode(mulaw_decode(once)) == once


def test_quantization_error_is_at_most_half_a_step() -> None:
    codes = np.frombuffer(mulaw_encode(ALL_INT16), dtype=np.uint8)
    error = np.abs(mulaw_decode(codes).astype(np.int32) - ALL_INT16.astype(np.int32))
    exponent = ((~codes.astype(np.int32)) >> 4) & 0x07
    half_step = (8 << exponent) // 2  # segment e has a step of 8·2^e in 16-bit units
    in_range = np.abs(ALL_INT16.astype(np.int32)) <= 32635  # beyond this G.711 clips
    assert np.all(error[in_range] <= half_step[in_range])
    assert error.max() <= 32767 - 32124 + 1  # clipped extremes land on the top code
    # Encoding is monotonic: a larger sample never decodes to a smaller value.
    assert np.all(np.diff(mulaw_decode(codes).astype(np.int32)) >= 0)


def test_encode_wants_int16() -> None:
    with pytest.raises(TypeError):
        mulaw_encode(np.zeros(4, dtype=np.int32))


def test_decode_accepts_arrays_and_buffers() -> None:
    codes = np.array([0xFF, 0x80], dtype=np.uint8)
    assert mulaw_decode(codes).tolist() == [0, 32124]
    assert mulaw_decode(bytearray(b"\xff\x80")).tolist() == [0, 32124]
    assert mulaw_decode(b"").size == 0


# ----------------------------------------------------------- sample formats


def test_float_conversions() -> None:
    assert np.array_equal(float32_to_pcm16(pcm16_to_float32(ALL_INT16)), ALL_INT16)
    assert pcm16_to_float32(np.array([-32768], dtype=np.int16))[0] == -1.0
    clipped = float32_to_pcm16(np.array([2.0, -2.0, 0.5], dtype=np.float32))
    assert clipped.tolist() == [32767, -32768, 16384]


# --------------------------------------------------------------- resampling


@pytest.mark.parametrize(
    ("from_rate", "to_rate", "n_in", "n_out"),
    [(8000, 16000, 160, 320), (16000, 8000, 16000, 8000), (22050, 8000, 22050, 8000),
     (22050, 16000, 44100, 32000), (8000, 8000, 100, 100)],
)  # fmt: skip
def test_resample_lengths(from_rate: int, to_rate: int, n_in: int, n_out: int) -> None:
    pcm = resample(np.zeros(n_in, dtype=np.int16), from_rate, to_rate)
    floats = resample(np.zeros(n_in, dtype=np.float32), from_rate, to_rate)
    assert (pcm.dtype, floats.dtype) == (np.dtype(np.int16), np.dtype(np.float32))
    assert len(pcm) == len(floats) == n_out
    assert resample(np.zeros(0, dtype=np.int16), 8000, 16000).size == 0


@pytest.mark.parametrize(("hz", "from_rate", "to_rate"), [(440, 22050, 8000), (1000, 8000, 16000),
                                                          (3000, 16000, 8000)])  # fmt: skip
def test_resample_keeps_a_sines_frequency(hz: int, from_rate: int, to_rate: int) -> None:
    out = resample(sine(hz, from_rate, 1.0), from_rate, to_rate)
    assert abs(dominant_hz(out, to_rate) - hz) <= 2
    # Amplitude is kept too (away from the filter's edges).
    assert np.abs(out[to_rate // 4 : -to_rate // 4]).max() == pytest.approx(16384, rel=0.02)


def test_resample_removes_what_the_new_rate_cannot_carry() -> None:
    out = resample(sine(6000, 22050, 1.0), 22050, 8000)  # above the 4 kHz Nyquist of a phone
    # No alias folded back into the band (away from the switch-on transient at the edges).
    assert np.abs(out[800:-800]).max() < 50


@pytest.mark.parametrize("quality", ["QQ", "HQ"])
def test_stream_resampler_matches_the_signal(quality: str) -> None:
    signal = sine(1000, 8000, 2.0)
    stream = StreamResampler(8000, 16000, quality=quality)
    pieces = [stream.process(signal[i : i + 160]) for i in range(0, len(signal), 160)]
    pieces.append(stream.process(np.zeros(0, dtype=np.int16), last=True))
    out = np.concatenate(pieces)
    assert abs(len(out) - 2 * len(signal)) <= 2
    assert abs(dominant_hz(out[:32000], 16000) - 1000) <= 2
    if quality == "QQ":  # the low-latency filter hands back (almost) every piece at once
        assert all(len(p) >= 316 for p in pieces[:-1])
    with pytest.raises(TypeError):
        stream.process(np.zeros(4, dtype=np.float32))


def test_phone_helpers() -> None:
    tone = sine(500, 22050, 0.5)
    mulaw = pcm_to_mulaw(tone, 22050)
    assert len(mulaw) == 4000
    assert abs(dominant_hz(mulaw_decode(mulaw), 8000) - 500) <= 2
    assert len(pcm_to_mulaw(pcm16_to_float32(tone), 22050)) == 4000
    wide = mulaw_to_pcm(mulaw)
    assert wide.dtype == np.int16 and len(wide) == 8000
    assert abs(dominant_hz(wide, 16000) - 500) <= 2


# ------------------------------------------------------------------ framing


def test_split_frames_pads_the_last_frame_with_silence() -> None:
    audio = bytes(range(256)) + bytes(144)  # 400 bytes: two frames and 80 bytes
    frames = split_frames(audio)
    assert [len(f) for f in frames] == [FRAME_BYTES] * 3
    assert b"".join(frames)[:400] == audio
    assert frames[-1][80:] == bytes([MULAW_SILENCE]) * 80
    assert split_frames(bytes(320)) == [bytes(160), bytes(160)]
    assert split_frames(b"") == []
    with pytest.raises(ValueError):
        split_frames(b"x", 0)


def test_framer_accumulates_pieces_into_frames() -> None:
    framer = MulawFramer()
    assert framer.push(b"\x01" * 100) == []
    assert framer.pending == 100
    frames = framer.push(b"\x02" * 300)
    assert frames == [b"\x01" * 100 + b"\x02" * 60, b"\x02" * 160]
    assert framer.pending == 80
    assert framer.flush() == b"\x02" * 80 + b"\xff" * 80
    assert framer.flush() is None


# ---------------------------------------------------------------------- WAV


def test_mulaw_wav_keeps_bytes_exactly(tmp_path: Path) -> None:
    path = tmp_path / "call.wav"
    audio = ALL_CODES + b"\x7f"  # odd length, and the negative-zero code
    write_mulaw_wav(path, audio)
    raw = path.read_bytes()
    # RIFF, WAVE, an 18-byte fmt (format 7, mono, 8000 Hz, 8000 B/s, align 1, 8 bit, cbSize 0),
    # a fact chunk with the sample count, the data and its pad byte.
    assert raw[:4] == b"RIFF" and raw[8:12] == b"WAVE"
    assert struct.unpack_from("<4sIHHIIHHH", raw, 12) == (b"fmt ", 18, 7, 1, 8000, 8000, 1, 8, 0)
    assert struct.unpack_from("<4sII", raw, 38) == (b"fact", 4, 257)
    assert struct.unpack_from("<4sI", raw, 50) == (b"data", 257)
    assert struct.unpack_from("<I", raw, 4)[0] == len(raw) - 8
    assert len(raw) % 2 == 0
    assert read_mulaw_wav(path) == (audio, 8000)
    pcm, rate = read_wav(path)
    assert rate == 8000 and np.array_equal(pcm, mulaw_decode(audio))


def test_pcm_wav_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "tts.wav"
    tone = sine(440, 22050, 0.25)
    write_pcm_wav(path, tone, 22050)
    with wave.open(str(path)) as check:  # a standard PCM file
        assert (check.getnchannels(), check.getsampwidth(), check.getframerate()) == (1, 2, 22050)
    pcm, rate = read_wav(path)
    assert rate == 22050 and np.array_equal(pcm, tone)
    with pytest.raises(ValueError, match="μ-law"):
        read_mulaw_wav(path)


def test_read_wav_mixes_stereo_down(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    left = np.full(100, 1000, dtype=np.int16)
    right = np.full(100, 3000, dtype=np.int16)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(np.stack([left, right], axis=1).astype("<i2").tobytes())
    pcm, rate = read_wav(path)
    assert rate == 16000 and pcm.tolist() == [2000] * 100


def test_bad_wav_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not a wav file at all")
    with pytest.raises(ValueError, match="RIFF"):
        read_wav(junk)
    no_data = tmp_path / "nodata.wav"
    no_data.write_bytes(b"RIFF\x04\x00\x00\x00WAVE")
    with pytest.raises(ValueError, match="fmt or data"):
        read_wav(no_data)
    eight_bit = tmp_path / "u8.wav"
    with wave.open(str(eight_bit), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(8000)
        out.writeframes(b"\x80" * 10)
    with pytest.raises(ValueError, match="unsupported"):
        read_wav(eight_bit)
