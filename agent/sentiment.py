"""Sentiment of one customer message: VADER's compound score plus anger cues.

VADER scores words, so it misses what angry customers do with the rest of the
keyboard (SHOUTING, "!!!") and rates legal threats as neutral. The cues below
add that. `Sentiment.ANGRY` makes the policy hand over at once, so it needs a
strongly negative score *and* a cue, a very negative score on its own, or a
threat; mild frustration ("this stupid app") stays NEGATIVE.
"""

from __future__ import annotations

import re

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from gateway.models import Frozen, Sentiment

ANGRY_ALONE = -0.75  # compound at or below this is anger without any cue
ANGRY_WITH_CUE = -0.4  # compound at or below this plus one cue is anger
NEGATIVE = -0.3
POSITIVE = 0.4

_INSULTS = re.compile(
    r"\b(idiots?|morons?|incompetent|useless|pathetic|clowns|scam(mers?)?|liars?|thieves|"
    r"rip-?off|disgrace(ful)?|garbage|rubbish)\b",
    re.IGNORECASE,
)
_PROFANITY = re.compile(
    r"(\bf+u+c+k\w*|\bf\*+\w*|\bsh[i1]t\w*|\bwtf\b|\bdamn\w*|\bcrap\w*|\bbullshit\b|"
    r"\bwhat the hell\b|\bbloody\b)",
    re.IGNORECASE,
)
_ANGER_WORDS = re.compile(
    r"\b(furious|livid|outraged|angry|fuming|unacceptable|worst|disgusted|fed up)\b",
    re.IGNORECASE,
)
_THREATS = re.compile(
    r"\b(sue|suing|lawyer|attorney|legal action|small claims|chargeback|"
    r"report (you|this) to|trading standards|better business bureau|bbb)\b",
    re.IGNORECASE,
)
_EXCLAIM = re.compile(r"(!{2,}|\?!|!\?)")

_SEVERITY = {
    Sentiment.POSITIVE: 0,
    Sentiment.NEUTRAL: 1,
    Sentiment.NEGATIVE: 2,
    Sentiment.ANGRY: 3,
}


class SentimentReading(Frozen):
    """The label the policy acts on, with the evidence for it."""

    label: Sentiment
    compound: float  # VADER, -1 (most negative) to +1
    cues: tuple[str, ...] = ()  # "caps", "exclaim", "insult", "profanity", "anger", "threat"


def worse(a: Sentiment, b: Sentiment) -> Sentiment:
    """The more severe of two labels (a conversation's sentiment is its worst turn)."""
    return a if _SEVERITY[a] >= _SEVERITY[b] else b


def _shouting(text: str) -> bool:
    letters = [ch for ch in text if ch.isalpha()]
    if len(letters) < 8:
        return False  # "OK", "NO" and short acronyms are not shouting
    return sum(ch.isupper() for ch in letters) / len(letters) >= 0.7


class SentimentAnalyzer:
    """Stateless apart from VADER's lexicon, which is loaded once here."""

    def __init__(self) -> None:
        self._vader = SentimentIntensityAnalyzer()

    def analyze(self, text: str) -> SentimentReading:
        compound = float(self._vader.polarity_scores(text)["compound"])
        cues: list[str] = []
        if _shouting(text):
            cues.append("caps")
        if _EXCLAIM.search(text):
            cues.append("exclaim")
        if _INSULTS.search(text):
            cues.append("insult")
        if _PROFANITY.search(text):
            cues.append("profanity")
        if _ANGER_WORDS.search(text):
            cues.append("anger")
        if _THREATS.search(text):
            cues.append("threat")
        return SentimentReading(
            label=_label(compound, cues), compound=round(compound, 4), cues=tuple(cues)
        )


def _label(compound: float, cues: list[str]) -> Sentiment:
    if "threat" in cues or compound <= ANGRY_ALONE:
        return Sentiment.ANGRY
    if cues and compound <= ANGRY_WITH_CUE:
        return Sentiment.ANGRY
    if len(cues) >= 2 and compound < 0:
        return Sentiment.ANGRY
    # Insults aimed at us are anger even when VADER misses the words.
    if "insult" in cues and ("profanity" in cues or compound < 0):
        return Sentiment.ANGRY
    # Shouting a neutral question is frustration; "?!" on its own is not.
    if compound <= NEGATIVE or ("caps" in cues and compound <= 0) or (cues and compound < 0):
        return Sentiment.NEGATIVE
    if compound >= POSITIVE:
        return Sentiment.POSITIVE
    return Sentiment.NEUTRAL


__all__ = ["SentimentAnalyzer", "SentimentReading", "worse"]
