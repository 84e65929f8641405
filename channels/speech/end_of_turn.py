"""End of turn from the audio: Smart Turn v3.2 (Pipecat's open model) on onnxruntime.

A short silence after speech does not mean the caller has finished: people pause
mid-sentence to think or to read a number. Smart Turn v3.2 (a Whisper-tiny
encoder with a linear head, 8 MB int8 ONNX, BSD-2-Clause) scores the last 8 s of
the caller's audio for "this turn is complete" from how it sounds (intonation,
pace, the words' shape), not from a transcript.

The model file ships inside the `pipecat-ai` wheel (installed without its
dependencies, never imported: located through `importlib.util.find_spec`'s
search locations or the distribution's file list) and is sha256-checked before
it is loaded. Its input is `input_features` (batch, 80, 800): the Whisper
log-mel of the last 8 s at 16 kHz, zero-padded on the left, of audio normalised
to zero mean and unit variance, which faster-whisper's own
`FeatureExtractor(feature_size=80, chunk_length=8)` computes; its output is the
probability that the turn is complete.

    turn = SmartTurn.load()                    # blocking: call it off the event loop
    p = turn.probability(samples_16k_float32)  # ~30 ms on one core; thread-safe
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from channels.speech.model_wheels import check_hash
from gateway.errors import ConfigError

SAMPLE_RATE = 16000
WINDOW_S = 8
MODEL_FILE = "audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
# The file inside pipecat-ai 1.14.0 (the wheel itself is hash-pinned in requirements/).
MODEL_SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"


class EndOfTurnModelMissing(ConfigError):
    """The Smart Turn model file is not installed; the message says how to get it."""


def find_model() -> Path:
    """The installed Smart Turn v3.2 ONNX file (pipecat-ai's wheel, never imported)."""
    spec = importlib.util.find_spec("pipecat")  # finds the package without running it
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in roots:
        candidate = Path(root) / MODEL_FILE
        if candidate.is_file():
            return candidate
    try:
        located = importlib.metadata.distribution("pipecat-ai").locate_file(f"pipecat/{MODEL_FILE}")
    except importlib.metadata.PackageNotFoundError:
        located = None
    if located is not None and Path(str(located)).is_file():
        return Path(str(located))
    raise EndOfTurnModelMissing(
        "the end-of-turn model (Smart Turn v3.2) is not installed: `pip install --no-deps "
        "pipecat-ai==1.14.0` (only its ONNX file is used), or set GATEWAY_PHONE_END_OF_TURN=text"
    )


class SmartTurn:
    """Smart Turn v3.2 loaded once; `probability` is thread-safe (onnxruntime sessions are)."""

    def __init__(self, session: Any) -> None:
        from faster_whisper.feature_extractor import FeatureExtractor

        self._session = session
        self._features = FeatureExtractor(feature_size=80, chunk_length=WINDOW_S)
        self._samples = WINDOW_S * SAMPLE_RATE

    @classmethod
    def load(cls, path: Path | None = None, *, threads: int = 1) -> SmartTurn:
        """Check and load the model (blocking). Raises EndOfTurnModelMissing, or
        ModelHashMismatch when the file differs from the one released."""
        import onnxruntime  # type: ignore[import-untyped]  # no type information shipped

        model = path or find_model()
        check_hash(model, MODEL_SHA256, "smart-turn-v3.2")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            str(model), sess_options=options, providers=["CPUExecutionProvider"]
        )
        return cls(session)

    def features(self, audio: NDArray[np.float32]) -> NDArray[np.float32]:
        """(1, 80, 800): the log-mel of the last 8 s, left-padded with silence."""
        clip = np.asarray(audio, dtype=np.float32)[-self._samples :]
        clip = np.pad(clip, (self._samples - clip.size, 0))
        clip = (clip - clip.mean()) / np.sqrt(clip.var() + 1e-7)
        mel = self._features(clip, padding=0)[:, : self._samples // 160]
        return np.ascontiguousarray(mel[np.newaxis], dtype=np.float32)

    def probability(self, audio: NDArray[np.float32]) -> float:
        """Probability that the caller has finished their turn, from the turn's audio
        so far (16 kHz float32, ending at the silence after the last word)."""
        (scores,) = self._session.run(None, {"input_features": self.features(audio)})
        return float(np.asarray(scores).reshape(-1)[0])


class AudioTurnJudge:
    """Decides, for a call, whether a caller who just went quiet has finished: Smart Turn's
    probability at or above `threshold` ends the turn after `short_ms` of silence;
    below it the endpointer's longer end-of-turn silence runs out as usual.

    Inference runs in a small thread pool of its own (never on the event loop), shared
    by every call; at most `workers` run at once and the rest wait."""

    def __init__(
        self, model: SmartTurn, *, threshold: float, short_ms: int, workers: int = 2
    ) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.model = model
        self.threshold = threshold
        self.short_ms = short_ms
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="turn")

    async def probability(self, audio: NDArray[np.float32]) -> float:
        """Smart Turn's probability that the turn `audio` holds is complete."""
        import asyncio

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.model.probability, audio)

    async def close(self) -> None:
        """Stop the pool; an inference in progress finishes in its thread."""
        self._pool.shutdown(wait=False, cancel_futures=True)
