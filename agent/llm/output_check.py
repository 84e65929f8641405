"""The output check: nothing a model writes reaches a customer unless it passes.

A small model (or a misconfigured server) can echo its own system prompt or the
tags our context wraps the customer's words in, leak chat-template markers
("<<SYS>>", "[INST]", "<|im_start|>"), write a tool call as prose
('{"name": "order_lookup", "arguments": ...}') or ramble on. `OutputCheck` refuses such
text; the brain then falls back (agent/llm/fallback.py) and the
customer gets only the fallback's words. It is applied to every sentence before
it is spoken on a live call and to the finished answer on every channel.

Prompt echo is found by shared word runs: any `ECHO_WORDS` consecutive words of
the system prompt (any channel's) appearing in the output.
"""

from __future__ import annotations

import copy
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable

from agent.llm.context import DATA_TAGS

MAX_CHARS = 1500  # a finished answer longer than this is rambling, on any channel
ECHO_WORDS = 7

_MARKERS = re.compile(
    r"<<\s*/?\s*SYS\s*>>|\[/?\s*INST\s*\]|<\|[a-z_]+\|>|<\s*/?\s*s\s*>|"
    r"<\s*/?\s*(start_of_turn|end_of_turn|tool_call|tool_response|function_call|think)\s*>|"
    r"^\s*#{2,}\s*(system|instruction|user|assistant|response)\b|"
    r"^\s*(system|user|assistant)\s*:",
    re.IGNORECASE | re.MULTILINE,
)
_TOOL_SYNTAX = re.compile(
    r"\"(name|tool|function)\"\s*:\s*\"|\"arguments\"\s*:|\bfunctions\.\w+\s*\(|"
    r"```\s*(json|tool|python)\b|\b(order_lookup|password_reset|subscription_cancel|"
    r"refund_order|kb_search|escalate)\s*\(",
    re.IGNORECASE,
)
# Our own data delimiters echoed back (small models repeat the wrapper around the
# customer's words, bare or HTML-escaped): what is inside them is not an answer.
_DATA_TAG = re.compile(rf"(<|&lt;)\s*/?\s*({'|'.join(DATA_TAGS)})\b", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9']+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


# Writing systems told apart by the language check; kana and Han count as one.
_SCRIPT_OF = {"HIRAGANA": "CJK", "KATAKANA": "CJK", "CJK": "CJK", "HANGUL": "HANGUL"}
MIN_LETTERS = 4  # fewer letters than this say nothing about a text's writing system


def script_share(text: str) -> Counter[str]:
    """How many letters of `text` each writing system (LATIN, CYRILLIC, CJK, ARABIC…)
    has, from the Unicode character names."""
    counts: Counter[str] = Counter()
    for char in text:
        if char.isalpha():
            first = unicodedata.name(char, "UNKNOWN").split(" ", 1)[0]
            counts[_SCRIPT_OF.get(first, first)] += 1
    return counts


class OutputCheck:
    """Checks model text against the system prompts it must never repeat, and (bound to
    a customer's message with `answering`) against the customer's writing system."""

    def __init__(self, prompts: Iterable[str], *, max_chars: int = MAX_CHARS) -> None:
        self.max_chars = max_chars
        self._script: str | None = None  # the customer's writing system, once bound
        self._runs: set[tuple[str, ...]] = set()
        for prompt in prompts:
            words = _words(prompt)
            self._runs.update(
                tuple(words[i : i + ECHO_WORDS]) for i in range(len(words) - ECHO_WORDS + 1)
            )

    def answering(self, customer_text: str) -> OutputCheck:
        """This check for one turn: the answer must also be written mostly in the writing
        system of `customer_text` (a small model that drifts into another language is
        refused). Languages that share a writing system are not told apart: no language
        identification model ships with the gateway."""
        bound = copy.copy(self)
        shares = script_share(customer_text)
        total = sum(shares.values())
        bound._script = shares.most_common(1)[0][0] if total >= MIN_LETTERS else None
        return bound

    def problem(self, text: str, *, finished: bool = True) -> str | None:
        """Why `text` must not reach the customer, or None when it may.
        `finished`: the whole answer (checked for length and emptiness too)."""
        if finished and not text.strip():
            return "empty"
        if finished and len(text) > self.max_chars:
            return "too_long"
        if _MARKERS.search(text):
            return "template_marker"
        if _DATA_TAG.search(text):
            return "data_tag"
        if self._script is not None:
            shares = script_share(text)
            total = sum(shares.values())
            if total >= MIN_LETTERS and shares[self._script] * 2 < total:
                return "wrong_language"
        if _TOOL_SYNTAX.search(text):
            return "tool_syntax"
        words = _words(text)
        for i in range(len(words) - ECHO_WORDS + 1):
            if tuple(words[i : i + ECHO_WORDS]) in self._runs:
                return "prompt_echo"
        return None


__all__ = ["ECHO_WORDS", "MAX_CHARS", "OutputCheck"]
