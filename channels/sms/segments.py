"""How a reply looks as an SMS: plain text, GSM-7 or UCS-2, and at most N segments.

Pure functions, no I/O.

- `plain_text` strips Markdown (the agent may format for a browser) and swaps
  typographic punctuation for its GSM-7 twin (curly quotes, dashes, the
  ellipsis), as Twilio's Smart Encoding would: one `’` would otherwise make a
  whole message UCS-2, at less than half the characters per segment.
- `encoding`: GSM-7 when every character is in the GSM 03.38 basic table or
  its extension table (`^{}\\[~]|€` and form feed, two septets each), else UCS-2.
- Segment sizes: one GSM-7 segment holds 160 septets, a concatenated one 153
  (the rest is the UDH header); UCS-2: 70 and 67 UTF-16 code units. An
  extension character or a surrogate pair (an emoji) is never cut in two.
- `fit_sms` returns the text to send as ONE Twilio message of at most
  `max_segments` segments. Twilio splits it and the handset joins the parts
  again, in order, into one message with one SID (so one status callback
  tells how the whole reply fared). A longer text is shortened: cut at the
  last sentence end that keeps at least half of the room, else at the last
  word boundary, and marked with `...`; nothing asks the customer to reply
  for more: the whole text stays in the conversation for the agent and reps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67
MORE = "..."

_SMART = str.maketrans(
    {"‘": "'", "’": "'", "‚": "'", "“": '"', "”": '"', "„": '"', "–": "-", "—": "-",
     "−": "-", "…": "...", "\u00a0": " ", "\u2009": " ", "\u200b": "", "•": "-", "\t": " "}
)  # fmt: skip


@dataclass(frozen=True)
class Fitted:
    """What is sent: `text` in `encoding`, `segments` long; `shortened` if cut."""

    text: str
    encoding: Encoding
    segments: int
    shortened: bool


def encoding(text: str) -> Encoding:
    return "GSM-7" if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text) else "UCS-2"


def _units(char: str, enc: Encoding) -> int:
    if enc == "GSM-7":
        return 2 if char in GSM7_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1  # UTF-16 code units


def split_segments(text: str) -> list[str]:
    """The segments the network carries `text` in (one for a short text)."""
    enc = encoding(text)
    single, multi = (GSM7_SINGLE, GSM7_MULTI) if enc == "GSM-7" else (UCS2_SINGLE, UCS2_MULTI)
    if sum(_units(c, enc) for c in text) <= single:
        return [text] if text else []
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for char in text:
        size = _units(char, enc)
        if used + size > multi:  # never split an escape pair or a surrogate pair
            parts.append("".join(current))
            current, used = [], 0
        current.append(char)
        used += size
    if current:
        parts.append("".join(current))
    return parts


def count_segments(text: str) -> int:
    return len(split_segments(text))


_FENCE = re.compile(r"^\s*```[^\n]*$", re.MULTILINE)
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)[^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)[^)]*\)")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+", re.MULTILINE)
_QUOTE = re.compile(r"^\s{0,3}>\s?", re.MULTILINE)
_BULLET = re.compile(r"^(\s*)[*+•]\s+", re.MULTILINE)
_RULE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$", re.MULTILINE)
_STRONG = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1", re.DOTALL)
_EMPHASIS = re.compile(r"(?<![\w*])([*_])(?=\S)(.+?)(?<=\S)\1(?![\w*])")
_CODE = re.compile(r"`([^`]+)`")
_SPACES = re.compile(r"[ \t]+")
_BLANKS = re.compile(r"\n{3,}")


def plain_text(text: str) -> str:
    """`text` without Markdown and with GSM-7 punctuation (see the module docstring)."""
    out = _FENCE.sub("", text)
    out = _IMAGE.sub(lambda m: m.group(2), out)
    out = _LINK.sub(
        lambda m: m.group(2) if m.group(1) == m.group(2) else f"{m.group(1)} ({m.group(2)})", out
    )
    out = _RULE.sub("", out)
    out = _HEADING.sub("", out)
    out = _QUOTE.sub("", out)
    out = _BULLET.sub(r"\1- ", out)
    out = _STRONG.sub(r"\2", out)
    out = _EMPHASIS.sub(r"\2", out)
    out = _CODE.sub(r"\1", out)
    out = out.translate(_SMART)
    lines = [_SPACES.sub(" ", line).strip() for line in out.replace("\r\n", "\n").split("\n")]
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()


_SENTENCE_END = re.compile(r"[.!?](?=\s)|\n")


def fit_sms(text: str, max_segments: int) -> Fitted:
    """`text` as plain SMS text in at most `max_segments` segments (see the module docstring)."""
    body = plain_text(text)
    enc = encoding(body)
    segments = count_segments(body)
    if segments <= max_segments:
        return Fitted(body, enc, segments, shortened=False)
    if max_segments == 1:
        room = GSM7_SINGLE if enc == "GSM-7" else UCS2_SINGLE
    else:
        room = max_segments * (GSM7_MULTI if enc == "GSM-7" else UCS2_MULTI)
    room -= len(MORE) + 1
    while True:
        cut = _shorten(body, enc, room)
        if count_segments(cut) <= max_segments:
            return Fitted(cut, encoding(cut), count_segments(cut), shortened=True)
        room -= 2  # an escape or surrogate pair pushed the split point: try shorter


def _shorten(body: str, enc: Encoding, room: int) -> str:
    used = end = 0
    for end, char in enumerate(body):  # noqa: B007 - `end` is read after the loop
        used += _units(char, enc)
        if used > room:
            break
    head = body[:end]
    sentence = max((m.end() for m in _SENTENCE_END.finditer(head)), default=0)
    if sentence >= len(head) // 2:
        return head[:sentence].rstrip() + " " + MORE
    space = head.rfind(" ")
    if space >= len(head) // 2:
        head = head[:space]
    return head.rstrip(" ,;:-") + MORE


__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "Fitted",
    "count_segments",
    "encoding",
    "fit_sms",
    "plain_text",
    "split_segments",
]
