"""Text to speech for the phone channel: pyttsx3 driving espeak-ng.

espeak-ng keeps process-wide state and pyttsx3 engines are not thread-safe, so
all synthesis happens in one dedicated worker process (channels/phone/
tts_worker.py, a fresh interpreter on a socket pair) that holds one engine. The
event loop reaches it through one dedicated thread, which is also the one
queue: utterances are rendered in order, one at a time, each within a timeout.
A worker that dies is restarted and the utterance retried once; one that
overruns the timeout is killed and replaced.

    synth = EspeakSynthesizer.from_settings(settings)
    await synth.start()                      # start the worker now, not on the first call
    speech = await synth.synthesize("One moment please.")
    async with contextlib.aclosing(synth.stream(reply)) as parts:
        async for part in parts:             # sentence by sentence
            ...
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from channels.speech import tts_worker
from gateway.errors import ChannelError
from gateway.models import Frozen
from gateway.protocols import Speech, Synthesizer
from gateway.settings import Settings

log = logging.getLogger("gateway.phone.tts")

SAMPLE_RATE = 22050  # what espeak-ng renders (and pyttsx3 writes into its WAV header)
MAX_TEXT_CHARS = 2000
_STARTUP_TIMEOUT_S = 30.0


class SynthesisError(ChannelError):
    """Speech could not be synthesized (worker failure, bad voice, too much text)."""


class SynthesisTimeout(SynthesisError):
    """The worker took longer than the per-utterance timeout; it was restarted."""


class VoiceStyle(Frozen):
    """How espeak-ng should speak: a voice name (optionally with a `+variant`)."""

    voice: str = Field("en-us", min_length=1, max_length=64)
    rate: int = Field(170, ge=80, le=450)  # words per minute
    pitch: int = Field(50, ge=0, le=99)
    volume: float = Field(1.0, ge=0.0, le=1.0)


# ------------------------------------------------------------- sentences

_END = re.compile(r"[.!?…]+[\"')\]]*(?:\s+|$)")
_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "st", "no", "nr", "vs", "etc", "e.g", "i.e", "jr", "sr", "approx"}
)
_SOFT_BREAKS = (", ", "; ", ": ", " - ", " – ")


def split_sentences(text: str, max_chars: int = 200) -> list[str]:
    """Split `text` into sentences to speak one by one, so the first can play while
    the next is rendered. Abbreviations (`Dr.`, `No.`, `e.g.`) and decimals do not
    end a sentence; a sentence longer than `max_chars` is broken at a comma or space."""
    text = " ".join(text.split())
    sentences: list[str] = []
    start = 0
    for match in _END.finditer(text):
        candidate = text[start : match.end()].strip()
        last = candidate.rsplit(" ", 1)[-1].rstrip(".!?…\"')]").lower()
        if candidate.endswith(".") and (
            last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha())
        ):
            continue
        sentences.append(candidate)
        start = match.end()
    if text[start:].strip():
        sentences.append(text[start:].strip())
    return [piece for sentence in sentences for piece in _wrap(sentence, max_chars)]


def _wrap(sentence: str, max_chars: int) -> list[str]:
    pieces: list[str] = []
    while len(sentence) > max_chars:
        window = sentence[:max_chars]
        cut = max(window.rfind(mark) for mark in _SOFT_BREAKS)
        cut = cut + 1 if cut > 0 else window.rfind(" ")
        if cut <= 0:
            cut = max_chars
        pieces.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    if sentence:
        pieces.append(sentence)
    return pieces


# ----------------------------------------------------------- synthesizer


class EspeakSynthesizer:
    """`Synthesizer` backed by espeak-ng in a dedicated, restartable worker process."""

    def __init__(
        self,
        style: VoiceStyle | None = None,
        *,
        timeout_s: float = 10.0,
        max_pending: int = 32,
    ) -> None:
        self.style = style or VoiceStyle()
        self.timeout_s = timeout_s
        self.max_pending = max_pending
        self.restarts = 0  # worker processes started after the first
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tts")
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._started = 0
        self._pending = 0
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings) -> EspeakSynthesizer:
        """A synthesizer with the configured voice, rate and timeout."""
        style = VoiceStyle(voice=settings.tts_voice, rate=settings.tts_rate)
        return cls(style, timeout_s=settings.tts_timeout_s)

    @property
    def sample_rate(self) -> int:
        """espeak-ng renders 22050 Hz mono."""
        return SAMPLE_RATE

    @property
    def worker_pid(self) -> int | None:
        """The process id of the current worker (None before it starts)."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    async def start(self) -> None:
        """Start the worker now (start-up), so the first utterance does not wait for it."""
        await self._call(self._ensure_worker)

    async def synthesize(self, text: str, style: VoiceStyle | None = None) -> Speech:
        """Render `text` as mono int16 PCM at 22050 Hz; utterances are queued in order.

        Raises SynthesisTimeout past `timeout_s` (the worker is replaced) and
        SynthesisError for an unknown voice, too much text or a full queue."""
        text = "".join(ch if ch >= " " else " " for ch in text).strip()
        if not text:
            return Speech(text="", pcm=b"", sample_rate=SAMPLE_RATE)
        if len(text) > MAX_TEXT_CHARS:
            raise SynthesisError(f"text too long to speak at once ({len(text)} characters)")
        if self._pending >= self.max_pending:
            raise SynthesisError(f"speech synthesis busy ({self._pending} utterances waiting)")
        chosen = (style or self.style).model_dump()
        self._pending += 1
        try:
            pcm, rate = await self._call(self._render_blocking, text, chosen)
        finally:
            self._pending -= 1
        return Speech(text=text, pcm=pcm, sample_rate=rate)

    async def stream(
        self, text: str, style: VoiceStyle | None = None, *, lookahead: int = 2
    ) -> AsyncIterator[Speech]:
        """Speak `text` sentence by sentence: yields the first sentence as soon as it is
        rendered while up to `lookahead` following ones are rendered behind it. Closing
        the iterator early (barge-in; use `contextlib.aclosing`) drops the renders not
        yet started."""
        sentences = split_sentences(text)
        tasks: list[asyncio.Task[Speech]] = []
        try:
            for i in range(len(sentences)):
                while len(tasks) < min(i + 1 + lookahead, len(sentences)):
                    next_one = self.synthesize(sentences[len(tasks)], style)
                    tasks.append(asyncio.ensure_future(next_one))
                yield await tasks[i]
        finally:
            for task in tasks:
                task.cancel()

    async def close(self) -> None:
        """Stop the worker process and the thread; later calls fail."""
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(self._executor, self._stop_worker)
        self._executor.shutdown(wait=False)

    # -------------------------------------------------- the worker thread

    async def _call(self, fn: Any, *args: Any) -> Any:
        if self._closed:
            raise SynthesisError("speech synthesizer is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _ensure_worker(self) -> Connection:
        if self._proc is not None and self._proc.poll() is None and self._conn is not None:
            return self._conn
        self._stop_worker()
        # A fresh interpreter (not fork: this process runs threads and an event loop; not
        # multiprocessing's spawn: that re-imports the main script) talking over a socket pair.
        ours, theirs = socket.socketpair()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", tts_worker.__name__, "--worker-fd", str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # pyttsx3 prints "Audio saved to ..."
                env=env,
            )
        except OSError as exc:
            ours.close()
            raise SynthesisError(f"cannot start the speech worker: {exc}") from exc
        finally:
            theirs.close()
        parent = Connection(ours.detach())
        self._proc, self._conn = proc, parent
        if self._started:
            self.restarts += 1
            log.warning("speech worker restarted (pid %s)", proc.pid)
        self._started += 1
        try:
            ready = parent.poll(_STARTUP_TIMEOUT_S)
            status, detail = parent.recv() if ready else ("error", "it did not start in time")
        except (EOFError, OSError) as exc:
            status, detail = "error", f"it exited during start-up ({exc!r})"
        if status != "ready":
            self._stop_worker()
            raise SynthesisError(
                f"speech worker failed: {detail}. "
                "Is espeak-ng installed (apt-get install espeak-ng)?"
            )
        return parent

    def _render_blocking(self, text: str, style: dict[str, Any]) -> tuple[bytes, int]:
        for attempt in (1, 2):
            conn = self._ensure_worker()
            try:
                conn.send((text, style))
                if not conn.poll(self.timeout_s):
                    self._stop_worker(kill=True)
                    raise SynthesisTimeout(f"speech synthesis took longer than {self.timeout_s} s")
                status, payload = conn.recv()
            except (EOFError, OSError) as exc:  # the worker died under us
                self._stop_worker(kill=True)
                if attempt == 2:
                    raise SynthesisError("speech worker died twice in a row") from exc
                log.warning("speech worker died; restarting and retrying once")
                continue
            if status != "ok":
                raise SynthesisError(f"speech synthesis failed: {payload}")
            pcm, rate = payload
            return bytes(pcm), int(rate)
        raise AssertionError("unreachable")

    def _stop_worker(self, *, kill: bool = False) -> None:
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if conn is not None:
            if not kill:
                with contextlib.suppress(OSError):
                    conn.send(None)  # ask it to exit
            conn.close()
        if proc is not None:
            try:
                proc.wait(timeout=0.0 if kill else 1.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5.0)


# --------------------------------------------------------------- prompts

DEFAULT_PROMPTS: Mapping[str, str] = {
    "greeting": "Thanks for calling support. How can I help you today?",
    "hold": "One moment please, I am connecting you to a person.",
    "goodbye": "Thank you for calling. Goodbye.",
}


class PromptCache:
    """Fixed prompts rendered once (at start-up with `warm`) and reused by every call."""

    def __init__(
        self, synthesizer: Synthesizer, prompts: Mapping[str, str] = DEFAULT_PROMPTS
    ) -> None:
        self._synth = synthesizer
        self._prompts = dict(prompts)
        self._speech: dict[str, Speech] = {}
        self._lock = asyncio.Lock()
        self.renders = 0

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._prompts)

    async def warm(self) -> None:
        """Render every prompt not rendered yet."""
        for name in self._prompts:
            await self.get(name)

    async def get(self, name: str) -> Speech:
        """The rendered prompt `name` (KeyError for an unknown one); renders it at most once."""
        if name in self._speech:
            return self._speech[name]
        text = self._prompts[name]
        async with self._lock:
            if name not in self._speech:
                self._speech[name] = await self._synth.synthesize(text)
                self.renders += 1
        return self._speech[name]


def speech_samples(speech: Speech) -> NDArray[np.int16]:
    """The PCM of `speech` as a read-only numpy int16 array (no copy)."""
    return np.frombuffer(speech.pcm, dtype=np.int16)
