"""Telephone audio: G.711 μ-law, resampling, 20 ms framing and WAV files.

Twilio Media Streams carry G.711 μ-law at 8 kHz, mono, in 20 ms frames of 160
bytes. Speech recognition and the VAD want 16-bit PCM at 16 kHz; the local TTS
produces 16-bit PCM at its own rate (22.05 kHz or 16 kHz). Everything here is
pure numpy plus python-soxr and allocation-light, because it runs on every
frame of every call.

- μ-law follows the ITU-T G.191 reference implementation of G.711
  (`ulaw_compress` / `ulaw_expand`): 16-bit input is reduced to the 14-bit range
  G.711 is defined on, negative samples through their one's complement, so the
  code for -1 is 0x7F ("negative zero") and the table is exactly symmetric.
  Both directions are table lookups (256 entries to decode, 65536 to encode),
  built once at import from the reference formulas. `audioop` is not used: it
  is gone in Python 3.13 (and its encoder rounds negative samples differently).
- WAV: the stdlib `wave` module only handles PCM, and `soundfile` (libsndfile)
  would re-encode μ-law through its own encoder from PCM, so bytes taken off a
  call would not be stored byte for byte (0x7F comes back as 0xFF), for the
  price of a native dependency. A WAVE_FORMAT_MULAW file is a 46-byte header, so
  it is written with `struct`; reading parses the RIFF chunks for both formats.
"""

from __future__ import annotations

import os
import struct
import wave
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import soxr  # type: ignore[import-untyped]  # ships no type information

MULAW_RATE = 8000
"""Sample rate of a Twilio Media Stream (G.711 μ-law, mono)."""
STT_RATE = 16000
"""Sample rate the VAD and Whisper work at."""
FRAME_MS = 20
"""Duration of one Media Streams frame."""
FRAME_BYTES = MULAW_RATE * FRAME_MS // 1000
"""Bytes (= samples) in one 20 ms μ-law frame: 160."""
MULAW_SILENCE = 0xFF
"""The μ-law code for 0 (positive zero), what silence is padded with."""

WAVE_FORMAT_PCM = 1
WAVE_FORMAT_MULAW = 7
WAVE_FORMAT_EXTENSIBLE = 0xFFFE

Int16Array = npt.NDArray[np.int16]
Float32Array = npt.NDArray[np.float32]
_Sample = TypeVar("_Sample", np.int16, np.float32)

# ------------------------------------------------------------------ G.711 μ-law


def _expand_table() -> Int16Array:
    # G.191 `ulaw_expand`: codes are stored inverted; each segment doubles the step.
    codes = np.arange(256, dtype=np.int32)
    sign = np.where(codes < 0x80, -1, 1)
    inverted = ~codes & 0xFF
    exponent = (inverted >> 4) & 0x07
    mantissa = inverted & 0x0F
    step = 4 << (exponent + 1)
    magnitude = (0x80 << exponent) + step * mantissa + step // 2 - 4 * 33
    table: Int16Array = (sign * magnitude).astype(np.int16)
    return table


def _compress_table() -> npt.NDArray[np.uint8]:
    # G.191 `ulaw_compress` for every int16 value, indexed by the value's uint16 bits.
    linear = np.arange(65536, dtype=np.int32)
    linear = np.where(linear >= 32768, linear - 65536, linear)
    # One's complement for negatives: -1..-4 share magnitude 0 with 0..3.
    absno = np.minimum((np.where(linear < 0, ~linear, linear) >> 2) + 33, 0x1FFF)
    # Segment = bit length of absno >> 6, plus one (absno >> 6 is at most 127).
    segno = np.ones_like(absno)
    rest = absno >> 6
    while np.any(rest):
        segno += rest > 0
        rest >>= 1
    high = 8 - segno
    low = 0x0F - ((absno >> segno) & 0x0F)
    code = (high << 4) | low
    table: npt.NDArray[np.uint8] = np.where(linear >= 0, code | 0x80, code).astype(np.uint8)
    return table


_EXPAND = _expand_table()
_COMPRESS = _compress_table()


def mulaw_decode(data: bytes | bytearray | memoryview | npt.NDArray[np.uint8]) -> Int16Array:
    """μ-law codes (one byte per sample) to 16-bit linear PCM."""
    codes = data if isinstance(data, np.ndarray) else np.frombuffer(data, dtype=np.uint8)
    pcm: Int16Array = _EXPAND[codes]
    return pcm


def mulaw_encode(pcm: Int16Array) -> bytes:
    """16-bit linear PCM to μ-law codes, one byte per sample."""
    if pcm.dtype != np.int16:
        raise TypeError(f"mulaw_encode wants int16 samples, got {pcm.dtype}")
    return bytes(_COMPRESS[pcm.view(np.uint16)])


# ------------------------------------------------------------ sample formats


def pcm16_to_float32(pcm: Int16Array) -> Float32Array:
    """int16 to float32 in [-1, 1) (divides by 32768, so the round trip is exact)."""
    return pcm.astype(np.float32) * np.float32(1.0 / 32768.0)


def float32_to_pcm16(samples: Float32Array) -> Int16Array:
    """float32 (nominally [-1, 1]) to int16, rounded and clipped."""
    scaled = np.rint(samples.astype(np.float32, copy=False) * np.float32(32768.0))
    pcm: Int16Array = np.clip(scaled, -32768, 32767).astype(np.int16)
    return pcm


# ---------------------------------------------------------------- resampling


def resample(
    samples: npt.NDArray[_Sample], from_rate: int, to_rate: int, *, quality: str = "HQ"
) -> npt.NDArray[_Sample]:
    """Resample a whole mono signal (int16 or float32; the dtype is kept).

    The output has round(len * to_rate / from_rate) samples. soxr clips int16
    output instead of wrapping it.
    """
    if samples.ndim != 1:
        raise ValueError("resample wants a mono (1-D) signal")
    if from_rate == to_rate:
        return samples.copy()
    if samples.size == 0:
        return samples[:0].copy()
    out = soxr.resample(samples, from_rate, to_rate, quality=quality)
    return np.asarray(out, dtype=samples.dtype)


class StreamResampler:
    """Resample an int16 stream piece by piece, with the filter state carried over.

    Latency depends on `quality`: soxr's "HQ" and "MQ" filters release output
    in blocks of ~100 ms (about five 20 ms frames at 8 kHz), after a first
    delay of ~120 ms; "QQ" (cubic interpolation) returns each piece at once
    (holding back 4 samples) but leaves images of the 3-4 kHz band only
    6-10 dB down. Use "QQ" where latency matters more than fidelity (the
    VAD) and `resample` on whole utterances where fidelity matters (STT).
    """

    def __init__(self, from_rate: int, to_rate: int, *, quality: str = "HQ") -> None:
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._stream = soxr.ResampleStream(from_rate, to_rate, 1, dtype="int16", quality=quality)

    def process(self, samples: Int16Array, *, last: bool = False) -> Int16Array:
        """Feed the next piece; returns whatever output is ready (may be empty).
        `last=True` flushes the tail; the stream is finished after that."""
        if samples.dtype != np.int16:
            raise TypeError(f"StreamResampler wants int16 samples, got {samples.dtype}")
        out = self._stream.resample_chunk(np.ascontiguousarray(samples), last=last)
        return np.asarray(out, dtype=np.int16)


def mulaw_to_pcm(mulaw: bytes, to_rate: int = STT_RATE) -> Int16Array:
    """Phone audio (8 kHz μ-law) to int16 PCM at `to_rate` (16 kHz for the VAD/STT)."""
    return resample(mulaw_decode(mulaw), MULAW_RATE, to_rate)


def pcm_to_mulaw(pcm: Int16Array | Float32Array, from_rate: int) -> bytes:
    """PCM at any rate (e.g. 22.05 kHz TTS output) to 8 kHz μ-law for the phone line."""
    linear = pcm if pcm.dtype == np.int16 else float32_to_pcm16(pcm.astype(np.float32))
    return mulaw_encode(resample(linear.astype(np.int16, copy=False), from_rate, MULAW_RATE))


# ------------------------------------------------------------------- framing


def split_frames(mulaw: bytes, frame_bytes: int = FRAME_BYTES) -> list[bytes]:
    """Cut μ-law audio into frames, the last one padded with μ-law silence (0xFF)."""
    if frame_bytes <= 0:
        raise ValueError("frame_bytes must be positive")
    frames = [mulaw[i : i + frame_bytes] for i in range(0, len(mulaw), frame_bytes)]
    if frames and len(frames[-1]) < frame_bytes:
        frames[-1] = frames[-1].ljust(frame_bytes, bytes([MULAW_SILENCE]))
    return frames


class MulawFramer:
    """Accumulate μ-law audio arriving in pieces of any size into whole frames.

    For streaming TTS: `push` returns the frames completed so far and keeps the
    remainder; `flush` pads the remainder with silence at the end of a turn.
    """

    def __init__(self, frame_bytes: int = FRAME_BYTES) -> None:
        if frame_bytes <= 0:
            raise ValueError("frame_bytes must be positive")
        self.frame_bytes = frame_bytes
        self._pending = bytearray()

    def push(self, mulaw: bytes) -> list[bytes]:
        """Add audio; return every complete frame now available."""
        self._pending += mulaw
        whole = len(self._pending) - len(self._pending) % self.frame_bytes
        frames = [
            bytes(self._pending[i : i + self.frame_bytes])
            for i in range(0, whole, self.frame_bytes)
        ]
        del self._pending[:whole]
        return frames

    def flush(self) -> bytes | None:
        """The remainder padded to a whole frame with silence, or None when empty."""
        if not self._pending:
            return None
        frame = bytes(self._pending).ljust(self.frame_bytes, bytes([MULAW_SILENCE]))
        self._pending.clear()
        return frame

    @property
    def pending(self) -> int:
        """Bytes held back waiting for a whole frame."""
        return len(self._pending)


# ----------------------------------------------------------------------- WAV

PathLike = str | os.PathLike[str]


def write_mulaw_wav(path: PathLike, mulaw: bytes, *, sample_rate: int = MULAW_RATE) -> None:
    """Write μ-law bytes as-is into a mono WAVE_FORMAT_MULAW file."""
    size = len(mulaw)
    # Non-PCM formats carry cbSize in `fmt ` (18 bytes) and a `fact` chunk with
    # the sample count; chunks are padded to an even length.
    fmt = struct.pack("<HHIIHHH", WAVE_FORMAT_MULAW, 1, sample_rate, sample_rate, 1, 8, 0)
    body = b"".join(
        (
            b"WAVE",
            b"fmt ", struct.pack("<I", len(fmt)), fmt,
            b"fact", struct.pack("<II", 4, size),
            b"data", struct.pack("<I", size), mulaw, b"\x00" * (size & 1),
        )
    )  # fmt: skip
    Path(path).write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def write_pcm_wav(path: PathLike, pcm: Int16Array, sample_rate: int) -> None:
    """Write mono int16 PCM as a standard PCM WAV file."""
    if pcm.dtype != np.int16 or pcm.ndim != 1:
        raise TypeError("write_pcm_wav wants a 1-D int16 array")
    with wave.open(os.fspath(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.astype("<i2", copy=False).tobytes())


def _read_riff(path: PathLike) -> tuple[int, int, int, int, bytes]:
    """(format tag, channels, rate, bits per sample, data) of a WAV file."""
    raw = Path(path).read_bytes()
    if len(raw) < 12 or raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a RIFF/WAVE file")
    fmt: tuple[int, int, int, int] | None = None
    data: bytes | None = None
    pos = 12
    while pos + 8 <= len(raw):
        chunk_id, size = struct.unpack_from("<4sI", raw, pos)
        body = raw[pos + 8 : pos + 8 + size]  # a truncated last chunk keeps what is there
        pos += 8 + size + (size & 1)
        if chunk_id == b"fmt " and len(body) >= 16:
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
            if tag == WAVE_FORMAT_EXTENSIBLE and len(body) >= 40:
                (tag,) = struct.unpack_from("<H", body, 24)  # first field of the SubFormat GUID
            fmt = (tag, channels, rate, bits)
        elif chunk_id == b"data":
            data = body
    if fmt is None or data is None:
        raise ValueError(f"{path}: WAV file without a fmt or data chunk")
    return (*fmt, data)


def read_mulaw_wav(path: PathLike) -> tuple[bytes, int]:
    """(μ-law bytes, sample rate) of a mono μ-law WAV file, bytes untouched."""
    tag, channels, rate, bits, data = _read_riff(path)
    if tag != WAVE_FORMAT_MULAW or channels != 1 or bits != 8:
        raise ValueError(f"{path}: not mono 8-bit μ-law (format {tag}, {channels} ch, {bits} bit)")
    return data, rate


def read_wav(path: PathLike) -> tuple[Int16Array, int]:
    """(int16 samples, sample rate) of a 16-bit PCM or μ-law WAV file.

    Multi-channel files are mixed down to mono by averaging the channels.
    """
    tag, channels, rate, bits, data = _read_riff(path)
    if tag == WAVE_FORMAT_PCM and bits == 16:
        samples = np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2").astype(np.int16)
    elif tag == WAVE_FORMAT_MULAW and bits == 8:
        samples = mulaw_decode(data)
    else:
        raise ValueError(f"{path}: unsupported WAV encoding (format {tag}, {bits} bit)")
    if channels > 1:
        frames = samples[: len(samples) // channels * channels].reshape(-1, channels)
        samples = np.rint(frames.mean(axis=1)).astype(np.int16)
    return samples, rate


__all__ = [
    "FRAME_BYTES",
    "FRAME_MS",
    "MULAW_RATE",
    "MULAW_SILENCE",
    "STT_RATE",
    "Float32Array",
    "Int16Array",
    "MulawFramer",
    "StreamResampler",
    "float32_to_pcm16",
    "mulaw_decode",
    "mulaw_encode",
    "mulaw_to_pcm",
    "pcm16_to_float32",
    "pcm_to_mulaw",
    "read_mulaw_wav",
    "read_wav",
    "resample",
    "split_frames",
    "write_mulaw_wav",
    "write_pcm_wav",
]
