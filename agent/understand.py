"""Understanding beyond keywords: nearest-exemplar intent matching on WordLlama.

`Matcher` embeds a message with WordLlama (the `wordllama` wheel ships its
16 MB, 256-dimension model and tokenizer; it is loaded from the installed
package with downloads disabled, so nothing leaves the machine) and compares it
with labelled exemplars: the train split of our evaluation set of real customer
wording (bench/eval/build.py writes `exemplars/train.jsonl`) plus our own
wording (`exemplars/own.jsonl`). The `K` most similar exemplars vote, each with
its cosine similarity; the family with the largest vote wins and the best
similarity within it is the match's score.

A query costs ~0.1 ms here (bench/agent_eval.py measures it), so it runs on the
event loop; the model is loaded once, at start-up (agent/wiring.py).

Families are the evaluation set's (see bench/eval/build.py), plus `security`
(an account taken over: a person, never an automatic reset), which only our own
wording describes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agent.kb import KbArticle
from gateway.models import Frozen

EXEMPLARS = Path(__file__).resolve().parent / "exemplars"
K = 5
CACHE_MAX = 10_000  # memoized matches, cleared when full (as agent/kb.py's results)


class Match(Frozen):
    """The nearest family of one message."""

    family: str
    score: float  # cosine similarity of the best exemplar of that family
    vote_share: float  # the family's share of the K neighbours' similarity


def load_model() -> Any:
    """WordLlama from the installed wheel, never downloading (blocking: ~0.3 s)."""
    import wordllama  # type: ignore[import-untyped]  # ships no type information
    from wordllama import WordLlama

    return WordLlama.load(
        cache_dir=Path(wordllama.__file__).resolve().parent, disable_download=True
    )


class Matcher:
    """Nearest-exemplar classification over one loaded WordLlama model."""

    def __init__(self, model: Any, exemplars: Sequence[tuple[str, str]]) -> None:
        if not exemplars:
            raise ValueError("the matcher needs exemplars")
        self._model = model
        self._families = [family for _, family in exemplars]
        self._vectors = self.embed([text for text, _ in exemplars])
        self._cache: dict[str, Match] = {}

    @classmethod
    def load(cls, folder: Path = EXEMPLARS) -> Matcher:
        """Load the model from the installed wheel (never downloading) and the exemplars."""
        return cls(load_model(), list(read_exemplars(sorted(folder.glob("*.jsonl")))))

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length embeddings, one row per text."""
        vectors = np.asarray(self._model.embed(texts, norm=True), dtype=np.float32)
        return vectors.reshape(len(texts), -1)

    def embed_one(self, text: str) -> np.ndarray:
        """`embed([text])[0]` without the batch machinery (padding, masks): a customer
        turn embeds one short text, and this is most of its cost."""
        table: np.ndarray = self._model.embedding
        rows = table.shape[0]
        ids = [
            i for i in self._model.tokenizer.encode(text, add_special_tokens=False).ids if i < rows
        ]
        if not ids:
            return np.zeros(table.shape[1], dtype=np.float32)
        vector: np.ndarray = table[ids].sum(axis=0)  # the mean's direction: normalised next
        norm = float(np.sqrt(vector @ vector))
        return (vector / norm if norm else vector).astype(np.float32, copy=False)

    def match(self, text: str) -> Match:
        """The family `text` is nearest to (memoized: short messages repeat)."""
        found = self._cache.get(text)
        if found is None:
            found = self._match(text)
            if len(self._cache) >= CACHE_MAX:
                self._cache.clear()
            self._cache[text] = found
        return found

    def _match(self, text: str) -> Match:
        sims = self._vectors @ self.embed_one(text)
        top = np.argpartition(-sims, K)[:K] if len(sims) > K else np.arange(len(sims))
        votes: dict[str, float] = {}
        best: dict[str, float] = {}
        for i in top:
            family, sim = self._families[i], float(sims[i])
            votes[family] = votes.get(family, 0.0) + max(sim, 0.0)
            best[family] = max(best.get(family, -1.0), sim)
        family = max(votes, key=lambda f: (votes[f], best[f]))
        total = sum(votes.values()) or 1.0
        return Match(family=family, score=best[family], vote_share=votes[family] / total)

    def about(self, text: str, phrases: Sequence[str]) -> float:
        """How close `text` is to any of `phrases` ("is this about X"): best cosine."""
        vectors = self.embed([text, *phrases])
        return float(np.max(vectors[1:] @ vectors[0]))


class ArticleIndex:
    """Help articles by meaning: each article is represented by its title, each of its
    tags and its first paragraph; an article's similarity is its best phrase's. Used
    where the FTS5 ranking (agent/kb.py) finds nothing: the hybrid of the two."""

    def __init__(self, matcher: Matcher, articles: Iterable[KbArticle]) -> None:
        self._matcher = matcher
        self._articles: list[KbArticle] = []
        phrases: list[str] = []
        for article in articles:
            first = article.body.split("\n\n", 1)[0]
            for phrase in (article.title, *article.tags, first):
                self._articles.append(article)
                phrases.append(phrase)
        self._vectors = matcher.embed(phrases) if phrases else np.zeros((0, 1), np.float32)

    def nearest(self, text: str) -> tuple[KbArticle, float] | None:
        """The closest article and its cosine similarity; None without articles."""
        if not self._articles:
            return None
        sims = self._vectors @ self._matcher.embed_one(text)
        i = int(np.argmax(sims))
        return self._articles[i], float(sims[i])


def read_exemplars(files: Iterable[Path]) -> Iterable[tuple[str, str]]:
    """(text, family) rows of JSONL files with `text` and `family` fields."""
    for path in files:
        for line in path.read_text("utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                yield row["text"], row["family"]


__all__ = ["EXEMPLARS", "ArticleIndex", "Match", "Matcher", "load_model", "read_exemplars"]
