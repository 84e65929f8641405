"""Whisper on only what was said: the utterance's mel frames, not a 30 s window.

faster-whisper pads every window to Whisper's 30 s (3000 mel frames) before the
encoder runs, so a 2 s phone utterance costs as much to encode as 30 s of audio,
and the decoder then cross-attends to 1500 encoder positions at every token.
CTranslate2 accepts fewer frames, so `ShortWindowDecoder` computes the log-mel of
the utterance plus `pad_s` of trailing silence (faster-whisper's own
`FeatureExtractor`, the same features) and calls the CTranslate2 model directly
with the decoding options the gateway gives faster-whisper (greedy or beam, the
same suppressed tokens, language forced, token cap), except that it decodes with
timestamps (below). Utterances longer than one window are left to faster-whisper.
With `min_window_s` a short utterance is padded with more silence, up to a window of
that length (base's measured setting: 10 s, still a third of Whisper's window).

Without the silence of a full window after the words, Whisper often does not say
<|endoftext|> where the speech ends and says the utterance again ("go forward ten
meters. Go forward ten meters. Go"), up to the token cap; without timestamps base
did so on several short clips ("5 5 5 5 5 ..."). Three guards, measured with
bench/stt_accuracy.py on real recordings through the phone path:

- decoding with timestamps (`timestamps`, on by default): Whisper then closes the
  segment with an end timestamp and stops, and text it places in a segment that
  starts in the padded silence (at or after the end of the audio) is dropped
  (`spoken_tokens`);
- `drop_repeats` (`repeat_guard`) keeps one copy of a transcript from where it starts
  saying its last words again to the end (units of 2 words or more, 3 words
  repeated at least, so "five five" stays);
- a decode that used all its tokens with neither guard finding where the loop
  starts (a digit said again and again) is marked `looped`, and the transcriber
  decodes that utterance again on the full window, as it does one that comes out
  blank (a short window's no-speech probability is higher: "yes" was dropped).

The accuracy cost of the shorter window is measured, not assumed: see docs/voice.md.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

SAMPLE_RATE = 16000
HOP = 160  # samples per mel frame (10 ms)
MAX_FRAMES = 3000  # Whisper's window
DEFAULT_PAD_S = 1.0
TIME_PRECISION_S = 0.02  # one timestamp token
SEGMENT_S = 5  # timestamp tokens: allow one segment (start and end) per this many seconds
MIN_REPEAT_WORDS = 3
RAGGED_WORDS = 2
# faster-whisper's own thresholds for a window that holds no speech.
NO_SPEECH_THRESHOLD = 0.6
LOGPROB_THRESHOLD = -1.0


@dataclass(frozen=True)
class Decoded:
    """One decoded utterance."""

    text: str
    tokens: int
    avg_logprob: float
    no_speech_prob: float
    looped: bool = False  # ran to the token cap repeating itself: decode the full window


class ShortWindowDecoder:
    """Decode an utterance from its own frames with a loaded faster_whisper.WhisperModel.

    Thread-safe: concurrent `decode` calls run in parallel on the model's workers."""

    def __init__(
        self,
        model: Any,
        language: str = "en",
        *,
        pad_s: float = DEFAULT_PAD_S,
        timestamps: bool = True,
        repeat_guard: bool = True,
        min_window_s: float = 0.0,
    ) -> None:
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        self._model = model
        multilingual = bool(model.model.is_multilingual)
        self._tokenizer = Tokenizer(
            model.hf_tokenizer,
            multilingual,
            task="transcribe",
            language=language if multilingual else "en",
        )
        self.timestamps = timestamps
        self.repeat_guard = repeat_guard
        self._prompt: list[int] = list(
            model.get_prompt(self._tokenizer, [], without_timestamps=not timestamps)
        )
        self._suppress: list[int] = list(get_suppressed_tokens(self._tokenizer, (-1,)) or [])
        self.pad_samples = round(pad_s * SAMPLE_RATE)
        # A window of at least this much (speech + silence), for very short utterances:
        # a bench option (--min-window); 0 (the default) pads by pad_s alone.
        self.min_window_samples = round(min_window_s * SAMPLE_RATE)

    def padding(self, samples: int) -> int:
        """Samples of silence after an utterance of `samples`: pad_s, or more to reach
        the minimum window."""
        return max(self.pad_samples, self.min_window_samples - samples)

    def fits(self, samples: int) -> bool:
        """Whether an utterance of `samples` (16 kHz) fits one short window."""
        return (samples + self.padding(samples)) // HOP <= MAX_FRAMES

    def features(self, audio: NDArray[np.float32]) -> NDArray[np.float32]:
        """The utterance's log-mel (1, 80, frames), `padding` of silence after it."""
        mel = self._model.feature_extractor(audio, padding=self.padding(len(audio)))
        frames = min(MAX_FRAMES, mel.shape[-1] - mel.shape[-1] % 2)  # the encoder halves it
        return np.ascontiguousarray(mel[np.newaxis, :, :frames], dtype=np.float32)

    def timestamp_tokens(self, samples: int) -> int:
        """Room for the timestamp tokens of an utterance's segments (two per ~5 s)."""
        if not self.timestamps:
            return 0
        return 2 * (1 + samples // (SEGMENT_S * SAMPLE_RATE))

    def decode(
        self, audio: NDArray[np.float32], *, max_new_tokens: int, beam_size: int = 1
    ) -> Decoded:
        """Greedy (beam_size 1) or beam-search decode of one utterance (< 30 s)."""
        import ctranslate2

        features = ctranslate2.StorageView.from_array(self.features(audio))
        room = max_new_tokens + self.timestamp_tokens(len(audio))
        result = self._model.model.generate(
            features,
            [self._prompt],
            beam_size=beam_size,
            patience=1.0,
            length_penalty=1.0,
            repetition_penalty=1.0,
            no_repeat_ngram_size=0,
            # CTranslate2 decodes at most max_length / 2 new tokens for Whisper (see stt.py).
            max_length=2 * room,
            return_scores=True,
            return_no_speech_prob=True,
            # With timestamps the confidence is taken from the words' own log-probabilities.
            return_logits_vocab=self.timestamps,
            suppress_blank=True,
            suppress_tokens=self._suppress,
        )[0]
        sequence = list(result.sequences_ids[0])
        # The score is length-normalised; recover the mean log-probability as faster-whisper does.
        avg_logprob = float(result.scores[0]) * len(sequence) / (len(sequence) + 1)
        no_speech = float(result.no_speech_prob)
        tokens, cut = spoken_tokens(
            sequence,
            eot=self._tokenizer.eot,
            timestamp_begin=self._tokenizer.timestamp_begin,
            speech_s=len(audio) / SAMPLE_RATE,
        )
        if self.timestamps and tokens:
            # Timestamp tokens are much less certain than words, and a dropped repeat
            # says nothing about the words kept: the mean over the kept words, as the
            # full window's (no timestamps) is.
            avg_logprob = words_logprob(
                result.logits[0], sequence, len(tokens), self._tokenizer.eot
            )
        heard = self._tokenizer.decode(tokens).strip()
        text = drop_repeats(heard) if self.repeat_guard else heard
        # Every token of its room used, and no guard found where the loop starts: a loop
        # (a digit said again and again) that only a whole window's silence stops.
        looped = len(sequence) >= room and not cut and text == heard
        if no_speech > NO_SPEECH_THRESHOLD and avg_logprob < LOGPROB_THRESHOLD:
            return Decoded(
                text="", tokens=0, avg_logprob=avg_logprob, no_speech_prob=no_speech, looped=False
            )
        return Decoded(
            text=text,
            tokens=len(tokens),
            avg_logprob=avg_logprob,
            no_speech_prob=no_speech,
            looped=looped,
        )


def spoken_tokens(
    sequence: list[int], *, eot: int, timestamp_begin: int, speech_s: float
) -> tuple[list[int], bool]:
    """The text tokens of a decoded `sequence` said within the speech, and whether any
    were dropped: everything after the first timestamp at or past `speech_s` (a
    segment Whisper places in the silence padded after the utterance, where it says
    the utterance again) is dropped, and so are the timestamps themselves."""
    kept: list[int] = []
    for at, token in enumerate(sequence):
        if token >= timestamp_begin and (token - timestamp_begin) * TIME_PRECISION_S >= speech_s:
            return kept, any(later < eot for later in sequence[at:])
        if token < eot:
            kept.append(token)
    return kept, False


def words_logprob(logits: list[Any], sequence: list[int], words: int, eot: int) -> float:
    """Mean log-probability of the first `words` text tokens of `sequence` (timestamps
    and special tokens skipped), from the decoder's logits at each step."""
    total, counted = 0.0, 0
    for step, token in zip(logits, sequence, strict=False):
        if token >= eot:
            continue
        row = np.asarray(step, dtype=np.float64)
        peak = float(row.max())
        total += float(row[token]) - peak - math.log(float(np.exp(row - peak).sum()))
        counted += 1
        if counted == words:
            break
    return total / max(counted, 1)


def _word(word: str) -> str:
    return re.sub(r"[^\w']", "", word.lower())


def drop_repeats(text: str) -> str:
    """`text` up to where it starts saying its own last words again and goes on doing
    so to the end (at least MIN_REPEAT_WORDS repeated, in units of 2 words or more:
    "mend the coat before you go out before you go out before" -> "mend the coat
    before you go out"); a loop said twice more may end in up to RAGGED_WORDS others
    (where the token cap stopped it). `text` is unchanged otherwise ("five five",
    "no no", and digits, which do repeat in order and phone numbers)."""
    words = text.split()
    plain = [_word(word) for word in words]
    for cut in range(2, len(words) - MIN_REPEAT_WORDS + 1):
        for unit in range(2, cut + 1):
            if all(word.isdigit() for word in plain[cut - unit : cut]):
                continue  # digits do repeat: order numbers, phone numbers
            matched = 0
            while (
                cut + matched < len(words) and plain[cut + matched] == plain[cut + matched - unit]
            ):
                matched += 1
            ragged = len(words) - cut - matched
            if matched >= MIN_REPEAT_WORDS and (
                ragged == 0 or (ragged <= RAGGED_WORDS and matched >= 2 * unit)
            ):
                # What is kept may itself end in a loop ("clubs 10 of clubs clubs 10"
                # after four "10 of clubs" leaves four of them): cut again.
                return drop_repeats(" ".join(words[:cut]))
    return text
