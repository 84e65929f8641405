"""The Silero VAD model run one 32 ms window at a time, with the state kept per call.

The model is Silero VAD v6 as shipped inside the faster-whisper package
(`faster_whisper/assets/silero_vad_v6.onnx`): nothing is downloaded. It takes
16 kHz audio in windows of 512 samples (32 ms), each preceded by the last 64
samples of the window before, and carries an LSTM state (`h`, `c`) from one
window to the next. faster-whisper's `SileroVADModel` only scores whole arrays
(it resets the state on every call), so the session is run directly here with
the state kept per call; fed the same audio window by window this gives
exactly the probabilities faster-whisper computes in one batch.

One session run costs ~90 µs per window. The endpointer that turns these
probabilities into a call's events is `channels.speech.vad.Endpointer`.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import numpy as np

from channels.speech.audio import STT_RATE, Float32Array
from gateway.errors import ConfigError

WINDOW = 512
"""Samples (at 16 kHz) the model scores at once: 32 ms."""
WINDOW_MS = WINDOW * 1000 // STT_RATE
_CONTEXT = 64  # samples of the previous window prepended to each window
_MODEL_FILE = "silero_vad_v6.onnx"


def vad_model_path() -> Path:
    """Where faster-whisper keeps its Silero VAD model."""
    from faster_whisper.utils import get_assets_path

    return Path(get_assets_path()) / _MODEL_FILE


class VadState:
    """One stream's recurrent state; never shared between calls."""

    __slots__ = ("c", "h", "input")

    def __init__(self) -> None:
        self.h = np.zeros((1, 1, 128), dtype=np.float32)
        self.c = np.zeros((1, 1, 128), dtype=np.float32)
        # Context then window, in one reused buffer; the context starts as silence.
        self.input = np.zeros((1, _CONTEXT + WINDOW), dtype=np.float32)


class SileroVad:
    """One onnxruntime session of Silero VAD, shared by any number of calls.

    onnxruntime's `run` is thread-safe and all per-call state is in `VadState`.
    The session uses one thread (`intra_op_num_threads=1`): a 32 ms window
    is far too small to gain from more, and calls run side by side.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        import onnxruntime  # type: ignore[import-untyped]  # no type information shipped

        model = Path(path) if path is not None else vad_model_path()
        if not model.is_file():
            raise ConfigError(f"no Silero VAD model at {model} (faster-whisper >= 1.2.1 ships it)")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session: Any = onnxruntime.InferenceSession(
            str(model), sess_options=options, providers=["CPUExecutionProvider"]
        )
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        # The v6 export: input [n, 576], h and c [1, 1, 128]; other exports
        # (v4/v5 with `sr` and a single `state`) are not what this code feeds.
        if set(inputs) != {"input", "h", "c"} or inputs["input"][-1] != _CONTEXT + WINDOW:
            raise ConfigError(f"unexpected Silero VAD model inputs {inputs} in {model}")

    def probability(self, window: Float32Array, state: VadState) -> float:
        """Speech probability of one 512-sample float32 window at 16 kHz."""
        buf = state.input
        buf[0, _CONTEXT:] = window
        prob, state.h, state.c = self.session.run(None, {"input": buf, "h": state.h, "c": state.c})
        buf[0, :_CONTEXT] = buf[0, -_CONTEXT:]  # this window's tail is the next one's context
        return float(prob.reshape(-1)[0])


@functools.cache
def shared_vad() -> SileroVad:
    """The process-wide session (loaded on first use, ~150 ms)."""
    return SileroVad()


__all__ = ["WINDOW", "WINDOW_MS", "SileroVad", "VadState", "shared_vad", "vad_model_path"]
