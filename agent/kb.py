"""The knowledge base: a folder of Markdown help articles, ranked with SQLite FTS5.

Article format (one file per article, `*.md`)::

    # Title of the article
    Tags: optional, comma separated, phrases customers use

    Plain paragraphs of the answer...

Articles are indexed once, at construction, into an in-memory FTS5 table and
ranked with FTS5's own `bm25()`, the title and tags weighing more than the body.
Words are stemmed here with the Snowball English stemmer (`snowballstemmer`,
"Porter2"), both when indexing and when searching, rather than by FTS5's
built-in `porter` tokenizer: the original Porter algorithm stems "international"
to "intern" but "internationally" to "internation", so "do you ship
internationally" matched only the word "ship", which is in most articles and so
weighs nothing in bm25, and the question was never answered; Porter2 gives both
"internat". Ranking is SQLite's; this module only turns the
raw bm25 of a hit into a confidence in [0, 1] (see `_confidence`), so the
policy can compare it with its handover threshold.
"""

from __future__ import annotations

import math
import re
import sqlite3
import threading
from pathlib import Path

import snowballstemmer

from gateway.errors import ConfigError
from gateway.models import Frozen

DEFAULT_KB_DIR = Path(__file__).with_name("kb")

# bm25 column weights: slug (unindexed), title, tags, body.
_WEIGHTS = (0.0, 4.0, 3.0, 1.0)
# Raw bm25 at which the saturation reaches one half; raw scores of good matches
# on the built-in articles run from about 2 to 8.
_HALF_SCORE = 1.5

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# Conversational filler carries no topic; leaving it in would let "tell me a
# joke" match an article that happens to say "tells you".
_FILLER = """a about above after again all also am an and any are as at be been before being
    below between both but by can cannot could did do does doing don done down during each
    few for from further get got had has have having he her here hers him his how i if in
    into is isn it its just know let like me might more most much must my myself need no
    nor not now of off ok okay on once only or other our ours out over own please really
    same say she should so some still such tell than thank thanks that the their them then
    there these they thing this those through to too try trying under until up us very want
    was we were what whats when where which while who whom why will with would yes yet you
    your yours hi hello hey im ive id dont cant wont didnt doesnt isnt help something
    anything question questions"""
_STOPWORDS = frozenset(_FILLER.split())


class KbArticle(Frozen):
    slug: str  # file name without .md
    title: str
    tags: tuple[str, ...] = ()
    body: str  # plain text paragraphs, separated by blank lines


class KbHit(Frozen):
    """One ranked search result; `score` is a confidence in [0, 1]."""

    slug: str
    title: str
    body: str
    score: float


def plain_text(markdown: str) -> str:
    """Strip the Markdown our channels cannot show (emphasis, code, links, headings)."""
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", markdown)  # [label](url) -> label
    text = re.sub(r"(\*\*|__|`)", "", text)
    text = re.sub(r"(?m)^#{1,6}\s*", "", text)
    text = re.sub(r"(?m)^\s*[-*+]\s+", "", text)  # bullets become plain lines
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def parse_article(slug: str, source: str) -> KbArticle:
    """Parse one article file; the first non-empty line is the title."""
    lines = source.strip().splitlines()
    if not lines:
        raise ValueError(f"article {slug!r} is empty")
    title = lines[0].lstrip("#").strip()
    rest = lines[1:]
    tags: tuple[str, ...] = ()
    if rest and rest[0].lower().startswith("tags:"):
        tags = tuple(t.strip() for t in rest[0].split(":", 1)[1].split(",") if t.strip())
        rest = rest[1:]
    return KbArticle(slug=slug, title=title, tags=tags, body=plain_text("\n".join(rest)))


def stemmed(text: str, stemmer: snowballstemmer.Stemmer) -> str:
    """`text` as the index holds it: lower-case words, each stemmed, space separated."""
    return " ".join(stemmer.stemWords(_WORD.findall(text.lower().replace("'", ""))))


def terms(text: str) -> list[str]:
    """The searchable words of `text`, lower case, without filler, de-duplicated."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower().replace("'", "")):
        if len(word) > 1 and word not in _STOPWORDS:
            seen.setdefault(word, None)
    return list(seen)


_WORD_CACHE_MAX = 50_000
_RESULT_CACHE_MAX = 10_000


class KnowledgeBase:
    """Ranked retrieval over the articles in `folder` (default: the built-in `agent/kb`)."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder if folder is not None else DEFAULT_KB_DIR
        if not self.folder.is_dir():
            raise ConfigError(f"GATEWAY_KB_DIR: no such folder: {self.folder}")
        self.articles: dict[str, KbArticle] = {}
        for path in sorted(self.folder.glob("*.md")):
            article = parse_article(path.stem, path.read_text(encoding="utf-8"))
            self.articles[article.slug] = article
        # In memory and read-only after this: one lock makes it (and the stemmer,
        # which keeps state while it works) safe from any thread.
        self._lock = threading.Lock()
        self._stemmer = snowballstemmer.stemmer("english")
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.execute(
            "CREATE VIRTUAL TABLE kb USING fts5("
            "slug UNINDEXED, title, tags, body, tokenize='unicode61')"
        )
        rows = [
            (
                a.slug,
                *(stemmed(text, self._stemmer) for text in (a.title, ", ".join(a.tags), a.body)),
            )
            for a in self.articles.values()
        ]
        self._db.executemany("INSERT INTO kb (slug, title, tags, body) VALUES (?, ?, ?, ?)", rows)
        self._db.commit()
        self._word_rows: dict[str, frozenset[int]] = {}
        self._results: dict[tuple[tuple[str, ...], int], list[KbHit]] = {}

    def search(self, query: str, limit: int = 3) -> list[KbHit]:
        """The best articles for `query`, best first; empty when nothing matches."""
        words = terms(query)
        if not words:
            return []
        # Support questions repeat ("how long does shipping take?"), and the
        # index is read-only, so results are memoized per (terms, limit).
        key = (tuple(words), limit)
        cached = self._results.get(key)
        if cached is None:
            cached = self._search(words, limit)
            if len(self._results) >= _RESULT_CACHE_MAX:
                self._results.clear()
            self._results[key] = cached
        return list(cached)

    def _search(self, query_words: list[str], limit: int) -> list[KbHit]:
        weights = ", ".join(str(w) for w in _WEIGHTS)
        with self._lock:
            words = list(dict.fromkeys(self._stemmer.stemWords(query_words)))
            # Each word quoted: customer text never reaches FTS5's query syntax.
            match = " OR ".join(f'"{w}"' for w in words)
            rows = self._db.execute(
                f"SELECT rowid, slug, bm25(kb, {weights}) AS rank FROM kb WHERE kb MATCH ?"
                " ORDER BY rank LIMIT ?",
                (match, limit),
            ).fetchall()
            hits = []
            for rowid, slug, rank in rows:
                matched = self._matched_words(rowid, words)
                article = self.articles[slug]
                score = _confidence(-float(rank), matched / len(words))
                hits.append(KbHit(slug=slug, title=article.title, body=article.body, score=score))
        return hits

    def best(self, query: str) -> KbHit | None:
        """The top hit, or None."""
        hits = self.search(query, limit=1)
        return hits[0] if hits else None

    def _matched_words(self, rowid: int, words: list[str]) -> int:
        return sum(rowid in self._rows_with(word) for word in words)

    def _rows_with(self, word: str) -> frozenset[int]:
        """The articles containing the stem `word`, memoized: the index is
        read-only after start-up, so this is a cached slice of the inverted index."""
        rows = self._word_rows.get(word)
        if rows is None:
            found = self._db.execute("SELECT rowid FROM kb WHERE kb MATCH ?", (f'"{word}"',))
            rows = frozenset(r[0] for r in found)
            if len(self._word_rows) >= _WORD_CACHE_MAX:
                self._word_rows.clear()
            self._word_rows[word] = rows
        return rows

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _confidence(raw: float, coverage: float) -> float:
    """Map bm25 (higher is better after negation) and the share of the query's
    words the article contains to [0, 1].

    bm25 alone is unbounded and tiny for words that occur in most articles
    ("order"), so it saturates: raw / (raw + half). Coverage tempers it, so an
    article matching one incidental word of a longer question ("my blender is
    broken" vs "my vacuum makes a weird noise") scores lower than one that
    answers every word; the square root keeps unknown product names from
    sinking an otherwise clear match.
    """
    if raw <= 0.0 or coverage <= 0.0:
        return 0.0
    saturated = raw / (raw + _HALF_SCORE)
    return round(min(1.0, saturated * math.sqrt(coverage)), 3)


__all__ = ["DEFAULT_KB_DIR", "KbArticle", "KbHit", "KnowledgeBase", "parse_article", "terms"]
