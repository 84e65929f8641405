"""`SentenceSplitter`: cut streamed text into sentences as soon as each is complete,
so a call can speak the first sentence while the model writes the rest.

A sentence ends at `.`, `!` or `?` (and any closing quotes or brackets) followed
by whitespace. That waits for the space after a full stop, so `$9.99` and
`1.5` never split; a few abbreviations ("e.g.", "Mr.") and single initials do
not end a sentence either. Blank lines (an email's paragraphs) end one too.
"""

from __future__ import annotations

import re

_END = re.compile(r"[.!?…]+[\"')\]]*(?=\s)|\n\s*\n")
_ABBREVIATIONS = frozenset(
    {"e.g.", "i.e.", "mr.", "mrs.", "ms.", "dr.", "st.", "no.", "vs.", "etc.", "approx.", "inc."}
)


class SentenceSplitter:
    """Feed text pieces; get back the sentences they completed, in order."""

    def __init__(self) -> None:
        self._buffer = ""

    def feed(self, piece: str) -> list[str]:
        """Add `piece`; return each sentence it completed (stripped, non-empty)."""
        self._buffer += piece
        done: list[str] = []
        start = 0
        for match in _END.finditer(self._buffer):
            end = match.end()
            if _abbreviation(self._buffer[start:end]):
                continue
            sentence = self._buffer[start:end].strip()
            if sentence:
                done.append(sentence)
            start = end
        self._buffer = self._buffer[start:]
        return done

    def flush(self) -> list[str]:
        """The rest, once the text is complete."""
        rest, self._buffer = self._buffer.strip(), ""
        return [rest] if rest else []


def _abbreviation(candidate: str) -> bool:
    words = candidate.split()
    if not words:
        return False
    last = words[-1].lower()
    return last in _ABBREVIATIONS or bool(re.fullmatch(r"[a-z]\.", last))


__all__ = ["SentenceSplitter"]
