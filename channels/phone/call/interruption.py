"""Barge-in that behaves like a person: "mm-hm" and a cough do not end the answer.

The caller's voice over the agent's answer sends `clear` at once (the player
stops within a frame, so the caller is not talked over), but what the answer
became is decided only once the interruption has been heard:

- words that ask or say something: the answer stays cut, and the stored agent
  message holds exactly what was heard (as before);
- a backchannel while the agent talks ("mm-hm", "yeah", "okay", "right", ...)
  or a sound without words (a cough, a door slam: Whisper hears nothing, or
  only a bracketed sound label, or the endpointer discards it as too short):
  the answer goes on from the first word the caller had not heard, and the
  messages queued behind it follow. The stored message is still what was
  heard: the words before the cut and those after the resumption.

A key press is deliberate: it cuts at once, with nothing held back. A streamed
answer still being written (negative ids) is cut as before.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

from channels.phone.call.playback import Played
from gateway.protocols import Transcript

# Words a listener says to show they are following, not to take the turn.
BACKCHANNELS = frozenset(
    {
        "mm", "mm-hm", "mm-hmm", "mhm", "mhmm", "mmhmm", "mmhm", "hmm", "uh-huh", "uhhuh",
        "uh", "huh", "yeah", "yep", "yes", "ya", "okay", "ok", "right", "sure", "alright",
        "i", "see", "got", "it", "gotcha", "cool", "great",
    }
)  # fmt: skip
MAX_BACKCHANNEL_WORDS = 3
NO_SPEECH = 0.6  # Whisper's own threshold for "this was not speech"
_LABEL = re.compile(r"^[\[(*].*[\])*]$")  # "[coughing]", "(door slams)", "*cough*"


def is_backchannel(text: str) -> bool:
    """Whether `text` is only a listener's acknowledgement ("Mm-hm.", "Yeah, okay.")."""
    words = [w for w in re.sub(r"[^\w\s'-]", " ", text.lower()).split() if w]
    return 0 < len(words) <= MAX_BACKCHANNEL_WORDS and all(w in BACKCHANNELS for w in words)


def is_noise(transcript: Transcript) -> bool:
    """Whether an utterance held no words: nothing heard, a sound label, or no speech."""
    text = transcript.text.strip()
    return not text or bool(_LABEL.match(text)) or transcript.no_speech_prob > NO_SPEECH


class Interruptions:
    """What a speech barge-in cut, held until the interruption has been heard."""

    def __init__(self, resume: Callable[[Played], None], store: Callable[[Played], object]) -> None:
        self._resume = resume  # speak the rest of a message again
        self._store = store  # what the caller heard of a message, for the store
        self._held: list[Played] | None = None
        self._prefix: dict[int, Played] = {}  # resumed message id -> the part heard before

    @property
    def open(self) -> bool:
        """A barge-in by voice is waiting to be heard."""
        return self._held is not None

    def begin(self) -> None:
        """The caller's voice is cutting the answer: hold what the cut reports."""
        if self._held is None:
            self._held = []

    def played(self, played: Played) -> None:
        """The player reports a message: held if it was cut by a pending barge-in,
        merged with its first part if it is a resumption, else stored."""
        first = self._prefix.pop(played.message_id, None)
        if first is not None:
            heard = " ".join(part for part in (first.heard, played.heard) if part)
            played = replace(played, heard=heard, start_ms=first.start_ms or played.start_ms)
        if self._held is not None and played.reason == "barge_in" and played.message_id > 0:
            self._held.append(played)
            return
        self._store(played)

    def settle(self, transcript: Transcript | None) -> bool:
        """The interruption was heard (None: too short to be an utterance). Returns
        True when it was a backchannel or noise and the answer resumes; False when it
        cut the answer for good (the held reports are stored) or nothing was held."""
        held, self._held = self._held, None
        if held is None:
            return False
        resume = transcript is None or is_noise(transcript) or is_backchannel(transcript.text)
        for played in held:
            if not resume or played.heard.split() == played.text.split():
                self._store(played)
                continue
            if played.heard:
                self._prefix[played.message_id] = played
            self._resume(played)
        return resume

    def rest(self, played: Played) -> str:
        """The words of `played`'s message the caller has not heard yet."""
        words = played.text.split()
        return " ".join(words[len(played.heard.split()) :])

    def close(self) -> None:
        """The call is over: what is still held is stored as cut."""
        held, self._held = self._held or [], None
        for played in held:
            self._store(played)
