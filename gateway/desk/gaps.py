"""Help-centre gaps: the questions the agent could not answer, grouped by similarity
(`GET /api/v1/reports/gaps`; docs/reports.md, "Help-centre gaps").

A handover is a gap when its brief's reason says the agent did not know: it did
not understand the request (the embedded policy, after asking again, found no
intent and no knowledge-base article: "the agent did not understand the
customer"), or the reason (the LLM's own words when it escalates) says the
knowledge base or help centre had nothing, it did not know or had no answer, or
its confidence was low. Handovers for other reasons (asked for a person, angry,
a refund, a refused or failed action, speech not recognised) are not gaps. One
question per conversation: the customer's last message before its first gap
handover.

Grouping (greedy, by cosine similarity): each question is embedded with WordLlama
(the model agent/understand.py loads; off the event loop, one batch at a time),
then, in conversation order, joins the group whose centroid (the normalised mean
of its members) it is most similar to when that similarity is at least
`THRESHOLD`, or starts a new group. Groups are listed largest first; each shows
the member nearest its centroid as the representative question. 0.42 separates
the real wording of bench/eval/utterances.jsonl's intents (branch hours, ATMs,
payment status...) with no group mixing two of them
(tests/gateway/desk/test_gaps.py).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
from pydantic import Field

from gateway.models import Frozen

THRESHOLD = 0.42
MAX_HANDOVERS = 20_000  # the period's latest handovers read (bounded work) ...
MAX_QUESTIONS = 5000  # ... and of their gaps, the latest grouped
MAX_LINKS = 50  # conversation ids listed per group
GAP_REASON = re.compile(
    r"did ?n[o']t understand|not understood|did ?n[o']t know|do(?:es)? ?n[o']t know"
    r"|not sure how to answer|no (?:article|answer)|knowledge[- ]?base|help[- ]?cent(?:re|er)"
    r"|not covered|could ?n[o']t (?:answer|find an answer)"
    r"|low confidence|not confident",
    re.IGNORECASE,
)
SPEECH = re.compile(r"speech recognition|could not be understood", re.IGNORECASE)


class HandoverQuestion(NamedTuple):
    """A handover of the period with the customer's last message before it."""

    conversation_id: int
    channel: str
    reason: str
    confidence: float
    question: str


def is_gap(reason: str) -> bool:
    """Whether a handover's brief reason says the agent did not know the answer."""
    return bool(GAP_REASON.search(reason)) and not SPEECH.search(reason)


class GapGroup(Frozen):
    count: int = Field(description="Conversations whose question is in this group.")
    question: str = Field(description="The representative question (nearest the centroid).")
    questions: list[str] = Field(description="Up to 5 other wordings from the group.")
    conversations: list[int] = Field(
        description=f"The conversations' ids (up to {MAX_LINKS}; /console#c=<id> opens one)."
    )
    channels: dict[str, int] = Field(description="How many on each channel.")


class Gaps(Frozen):
    """`GET /api/v1/reports/gaps`."""

    since: str
    until: str
    handed_over: int = Field(
        description="Conversations of the period handed over (of its latest "
        f"{MAX_HANDOVERS} handovers)."
    )
    unanswered: int = Field(description="Of them, gaps: the agent did not know the answer.")
    threshold: float = Field(description="Cosine similarity for joining a group.")
    groups: list[GapGroup]


Embed = Callable[[list[str]], np.ndarray]


def group(vectors: np.ndarray, threshold: float = THRESHOLD) -> list[list[int]]:
    """Greedy grouping of unit-length row vectors (see the module docstring); each
    group lists its rows in order."""
    groups: list[list[int]] = []
    sums: list[np.ndarray] = []
    centroids = np.zeros((0, vectors.shape[1] if vectors.ndim == 2 else 0), dtype=np.float32)
    for i, vector in enumerate(vectors):
        if len(groups):
            sims = centroids @ vector
            best = int(np.argmax(sims))
            if float(sims[best]) >= threshold:
                groups[best].append(i)
                sums[best] = sums[best] + vector
                norm = float(np.linalg.norm(sums[best])) or 1.0
                centroids[best] = sums[best] / norm
                continue
        groups.append([i])
        sums.append(vector.astype(np.float32))
        centroids = np.vstack([centroids, vector[None, :]])
    return groups


def gap_groups(
    found: Sequence[HandoverQuestion], vectors: np.ndarray, threshold: float = THRESHOLD
) -> list[GapGroup]:
    """`found` (one question each, embedded as `vectors`' rows) as groups, largest first."""
    out: list[tuple[int, int, GapGroup]] = []
    for members in group(vectors, threshold):
        centroid = vectors[members].sum(axis=0)
        sims = vectors[members] @ centroid
        order = [members[j] for j in np.argsort(-sims, kind="stable")]
        channels: dict[str, int] = {}
        for i in members:
            channels[found[i].channel] = channels.get(found[i].channel, 0) + 1
        seen = {found[order[0]].question}
        others: list[str] = []
        for i in order[1:]:
            if len(others) < 5 and found[i].question not in seen:
                seen.add(found[i].question)
                others.append(found[i].question)
        ids = sorted(found[i].conversation_id for i in members)
        out.append((-len(members), ids[0], GapGroup(
            count=len(members), question=found[order[0]].question, questions=others,
            conversations=ids[:MAX_LINKS], channels=channels,
        )))  # fmt: skip
    out.sort(key=lambda t: (t[0], t[1]))
    return [g for _, _, g in out]


def gap_questions(handovers: Sequence[HandoverQuestion]) -> list[HandoverQuestion]:
    """The gaps among `handovers` (latest first, as the store reads them): one per
    conversation (its first gap handover), with a question; the latest MAX_QUESTIONS
    conversations, in id order."""
    first: dict[int, HandoverQuestion] = {}
    for h in reversed(handovers):  # oldest first: a conversation's first gap counts
        if is_gap(h.reason) and h.question.strip() and h.conversation_id not in first:
            first[h.conversation_id] = h
    return [first[c] for c in sorted(first)[-MAX_QUESTIONS:]]


class GapEmbedder:
    """WordLlama loaded on first use, off the event loop; one batch at a time."""

    def __init__(self, load: Callable[[], Any] | None = None) -> None:
        self._load = load
        self._model: Any = None
        self._lock = asyncio.Lock()  # one load, one batch at a time: bounded

    async def embed(self, texts: list[str]) -> np.ndarray:
        async with self._lock:
            if self._model is None:
                self._model = await asyncio.to_thread(self._load or _load_wordllama)
            model = self._model
            return await asyncio.to_thread(_embed, model, texts)


def _load_wordllama() -> Any:
    from agent.understand import load_model  # the agent's own copy of the model

    return load_model()


def _embed(model: Any, texts: list[str]) -> np.ndarray:
    if not texts:
        return np.zeros((0, 1), dtype=np.float32)
    vectors = np.asarray(model.embed(texts, norm=True), dtype=np.float32)
    return vectors.reshape(len(texts), -1)


__all__ = [
    "MAX_HANDOVERS", "MAX_QUESTIONS", "THRESHOLD", "GapEmbedder", "GapGroup", "Gaps",
    "HandoverQuestion",
    "gap_groups", "gap_questions", "group", "is_gap",
]  # fmt: skip
