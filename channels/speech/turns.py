"""Does a caller's transcript read as a whole turn?

The endpointer ends a turn after `end_silence_ms` of silence (600 ms by
default), long enough that a caller who pauses to think mid-sentence is not cut
off. Most turns, though, are plainly finished well before that: "Let me talk
to a person." The call transcribes the pending utterance early (while the
silence runs) and, when its words read as complete, ends the turn after only
the short `quick_end_ms` silence (see `PhoneCall`).

"Complete" is judged on the text alone, deliberately cautiously, because a
wrong guess interrupts a caller (who can barge in, but should not need to):

- the transcript ends a sentence ("." "?" "!"), not a trailing "..." or "-";
- its last word is not one a sentence goes on from ("and", "the", "my", "um");
- its last word is not a number: callers read order and phone numbers in
  groups with pauses between, and "my order number is 10." may be half of it;
- a bare acknowledgement ("yes", "no thanks", "okay") is complete even
  without punctuation.

Whisper punctuates what it hears as finished, so on real recognition this
holds for ordinary questions and requests; anything else waits the full
silence, exactly as before.
"""

from __future__ import annotations

import re


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# A sentence goes on after these (conjunctions, articles, prepositions, possessives,
# auxiliaries and fillers): a transcript ending in one is a caller mid-thought.
_CONTINUES = _words(
    """
    a an the and but or nor so because since if then than that which who whose
    to of in on at by for from with about into over under after before as like
    my your our their his her its this these those some any every
    is are was were am be been being do does did have has had will would can could
    should shall may might must not
    um uh er erm hmm mm well just also plus
    """
)
_NUMBERS = _words(
    "zero oh one two three four five six seven eight nine ten eleven twelve "
    "thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty thirty "
    "forty fifty sixty seventy eighty ninety hundred thousand double triple"
)
_SHORT_ANSWERS = _words(
    """
    yes yeah yep yup no nope okay ok sure right correct thanks thank you
    please bye goodbye hello hi
    """
)
_WORD = re.compile(r"[a-z0-9']+")


def looks_complete(text: str) -> bool:
    """Whether the transcript `text` reads as a finished turn (see the module doc)."""
    text = text.strip()
    words = _WORD.findall(text.lower())
    if not words:
        return False
    if len(words) <= 3 and all(word in _SHORT_ANSWERS for word in words):
        return True
    if text.endswith(("...", "…", "-", "—", ",")) or text[-1] not in ".?!":
        return False
    last = words[-1]
    return last not in _CONTINUES and last not in _NUMBERS and not last[0].isdigit()


__all__ = ["looks_complete"]
