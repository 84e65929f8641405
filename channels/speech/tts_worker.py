"""The speech worker process: one pyttsx3 engine driving espeak-ng, one utterance at a time.

`EspeakSynthesizer` (channels/speech/tts.py) starts it as `python -m
channels.speech.tts_worker --worker-fd N`, a fresh interpreter on one end of a
socket pair, and talks to it with `multiprocessing.connection` messages:

- at start the worker sends ("ready", pid), or ("error", why) and exits;
- each request is (text, style), style a dict of voice, rate, pitch and volume;
  the answer is ("ok", (pcm, sample_rate)), mono int16 PCM, or ("error", why);
- None, or the gateway's end of the socket closing, ends the worker.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import threading
import wave
from multiprocessing.connection import Connection
from typing import Any

_RENDER_LIMIT_S = 120.0  # inside the worker; the gateway's own timeout is shorter


def _worker_main(conn: Connection) -> None:  # pragma: no cover - runs in the worker process
    """The worker: one pyttsx3 engine, one request at a time, until EOF or None."""
    workdir = tempfile.mkdtemp(prefix="gateway-tts-")
    try:
        try:
            import pyttsx3

            engine = pyttsx3.init("espeak")
        except Exception as exc:
            conn.send(("error", f"cannot start espeak-ng through pyttsx3: {exc}"))
            return
        finished = threading.Event()
        engine.connect("finished-utterance", lambda **_: finished.set())
        conn.send(("ready", os.getpid()))
        path = os.path.join(workdir, "utterance.wav")
        while True:
            try:
                request = conn.recv()
            except EOFError:  # the gateway went away
                return
            if request is None:
                return
            text, style = request
            try:
                conn.send(("ok", _render(engine, finished, path, text, style)))
            except Exception as exc:
                conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _render(
    engine: Any, finished: threading.Event, path: str, text: str, style: dict[str, Any]
) -> tuple[bytes, int]:
    from pyttsx3.drivers import _espeak

    for name in ("voice", "rate", "pitch", "volume"):
        engine.setProperty(name, style[name])
    # espeak-ng applies these on its own thread; let it finish first, or runAndWait (which
    # cancels whatever espeak is still doing) can drop them.
    _espeak.Synchronize()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    finished.clear()
    engine.save_to_file(text, path)
    engine.runAndWait()
    # With espeak-ng, runAndWait returns as soon as synthesis has *started* (espeak runs on
    # its own thread); the WAV is written when the utterance finishes. Wait for that, or
    # the next utterance's voice and rate would be applied to the tail of this one.
    if not finished.wait(_RENDER_LIMIT_S):
        raise TimeoutError("espeak-ng did not finish the utterance")
    current = str(engine.getProperty("voice") or "").lower()
    if style["voice"].lower() not in {current, current.rsplit("/", 1)[-1]}:
        raise ValueError(f"espeak-ng has no voice {style['voice']!r} (see `espeak-ng --voices`)")
    with wave.open(path, "rb") as wav:
        return wav.readframes(wav.getnframes()), wav.getframerate()


if __name__ == "__main__":  # pragma: no cover - the worker process
    if sys.argv[1:2] != ["--worker-fd"] or len(sys.argv) != 3:
        sys.exit(
            "usage: python -m channels.speech.tts_worker --worker-fd FD (started by the gateway)"
        )
    _worker_main(Connection(int(sys.argv[2])))
