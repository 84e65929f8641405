"""A mail's text: the body part decoded without mojibake, HTML turned into text, and
the new text of a reply cut from its quoted history and signature.

Decoding. `part.get_content()` decodes with replacement characters, so a body whose
declared charset lies (us-ascii declared, UTF-8 sent) or that declares none (8-bit
UTF-8 with no Content-Type) would be stored as mojibake. We decode the bytes ourselves:
the declared charset strictly, then UTF-8, then the charset of an HTML `<meta>` tag, then
cp1252, and only then the declared charset (or UTF-8) with U+FFFD for what is left.

Reply extraction is mail-parser-reply's, with every language it knows, hyphen lists
kept (not a signature), "wrote:" header lines that a client wrapped joined first, the
quote headers of languages it lacks (ru, uk, pt, no, ...) recognised by their shape,
and the text a bottom-poster writes under a quote kept.
"""

from __future__ import annotations

import html
import re
from email.message import EmailMessage, Message
from typing import Any

import html2text
from mailparser_reply import EmailMessage as ReplyMessage
from mailparser_reply.constants import MAIL_LANGUAGES

# html2text is pure Python and slow on huge documents (about 2 s a megabyte of nested
# elements): past this many characters a plain tag strip gives the text instead.
HTML2TEXT_MAX_CHARS = 512 * 1024
# Only this much text is ever read for the reply (the stored text is cut at 8,000).
MAX_REPLY_INPUT = 200_000
# Quote headers are recognised in every language the library knows; its signature
# words only in those whose lists do not hold everyday words ("Tak", Danish for
# "thanks", would cut "Tak for din mail." and all after it).
REPLY_LANGUAGES = tuple(sorted(lang for lang in MAIL_LANGUAGES if lang != "david"))
SIGNATURE_LANGUAGES = ("en", "de", "fr", "es", "it", "nl")

_META_CHARSET = re.compile(
    rb"""<meta[^>]{0,300}?charset\s*=\s*["']?\s*([a-zA-Z0-9_.:-]{1,40})""", re.I
)
_QUOTED = re.compile(r"^\s*>")
# The last words of a quote header ("... wrote:") in many languages, for joining a header
# a client wrapped over lines and for those mail-parser-reply does not know.
_WROTE_END = re.compile(
    r"(wrote|writes|schrieb|a\s+écrit|a\s+ecrit|escribió|escribio|ha\s+scritto|schreef|"
    r"skrev|skriver|napisał\(a\)|napisał|napisala|napisała|pisze|napsal\(a\)|kirjoitti|írta|"
    r"escreveu|escribe|scrive|schreibt|"
    r"пишет|написал\(а\)|написала|написал|пише|написав\(ла\)|написав|написала|yazdı|"
    r"写道|寫道|wrote\s+on)\s*[:：]\s*$",
    re.I,
)
# Shapes of a quote header with no "wrote" word: "<date>, Name <a@b.c>:" (Gmail in
# Russian, Ukrainian, ...), followed by quoted lines.
_ADDRESS_COLON = re.compile(r"<[^<>\s@]+@[^<>\s]+>\s*[:：]\s*$")
# How the first line of a wrapped quote header starts (a weekday, a date, "On", "Le", ...).
_HEADER_START = re.compile(
    r"^\s*(?:\d|(?:on|le|am|el|il|op|den|dne|dnia|w\s+dniu|em|no\s+dia|в|у|på|"
    r"mon|tue|wed|thu|fri|sat|sun|lun|mar|mer|jeu|ven|sam|dim|пн|вт|ср|чт|пт|сб|вс|нд)\b)",
    re.I,
)
_TAG = re.compile(r"<\s*/?\s*([a-zA-Z][a-zA-Z0-9]*)?[^>]*>")
_BLOCKS = frozenset({"p", "div", "br", "tr", "li", "table", "blockquote", "h1", "h2", "h3", "h4"})


def body_text(msg: EmailMessage | Message) -> str:
    """The mail's text: text/plain preferred, else HTML turned into text."""
    if not isinstance(msg, EmailMessage):
        return ""
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    is_html = part.get_content_subtype() == "html"
    text = decode_part(part, html=is_html)
    if is_html:
        text = html_to_text(text)
    return text.replace("\r\n", "\n").strip()


def decode_part(part: Message, *, html: bool = False) -> str:
    """The text of one text part, decoded as the module docstring says."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    return decode_bytes(payload, part.get_param("charset"), html=html)


def decode_bytes(data: bytes, declared: object, *, html: bool = False) -> str:
    """`data` decoded: declared charset strictly, UTF-8, HTML meta charset, cp1252,
    and only then with replacement characters."""
    charset = _charset_name(declared)
    tried: list[str] = []
    candidates = [charset, "utf-8"]
    if html:
        found = _META_CHARSET.search(data[:4096])
        candidates.append(found.group(1).decode("ascii").lower() if found else None)
    candidates.append("cp1252")
    for name in candidates:
        if not name or name in tried:
            continue
        tried.append(name)
        try:
            return data.decode(name)
        except (LookupError, UnicodeError):
            continue
    for name in (charset, "utf-8"):
        if name:
            try:
                return data.decode(name, "replace")
            except LookupError:
                continue
    return data.decode("utf-8", "replace")


def _charset_name(declared: object) -> str | None:
    if isinstance(declared, tuple):  # RFC 2231: (charset, language, value)
        declared = declared[2] if len(declared) == 3 else None
    if not isinstance(declared, str):
        return None
    name = declared.strip().strip("\"'").lower()
    return name if name and len(name) <= 40 else None


def html_to_text(markup: str) -> str:
    """HTML as readable text (html2text; a plain tag strip for a huge document)."""
    if len(markup) > HTML2TEXT_MAX_CHARS:
        return _strip_tags(markup)
    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.ignore_images = True
    converter.ignore_emphasis = True
    converter.ignore_links = True
    converter.ignore_tables = True
    # Keep table cells apart ("Account C-1001", not "AccountC-1001").
    text = converter.handle(re.sub(r"(?i)(</t[dh]\s*>)", r"\1 ", markup))
    return _tidy(text)


def _strip_tags(markup: str) -> str:
    markup = re.sub(r"(?is)<(script|style|head)\b[^>]*>.*?</\1\s*>", " ", markup)
    markup = re.sub(r"(?s)<!--.*?-->", " ", markup)
    text = html.unescape(_TAG.sub(_tag_space, markup))
    text = re.sub(r"[^\S\n]+", " ", text)  # runs of spaces, no line breaks
    text = re.sub(r" ?\n[\s]*\n ?", "\n\n", re.sub(r" ?\n ?", "\n", text))
    return text.strip()


def _tag_space(tag: re.Match[str]) -> str:
    name = tag.group(1)
    return "\n" if name and name.lower() in _BLOCKS else " "


def _tidy(text: str) -> str:
    text = "\n".join(line.rstrip() for line in text.splitlines())
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# ------------------------------------------------------------ reply extraction


def reply_text(text: str) -> str:
    """The new text of a reply: quoted history and signature stripped; text written
    under a quote (bottom-posting) kept."""
    text = normalize_quote_headers(text[:MAX_REPLY_INPUT].replace("\r\n", "\n"))
    try:
        replies = _read(text)
    except Exception:  # the library chokes: keep the whole text rather than lose it
        return text.strip()
    if not replies:
        return text.strip()
    first = replies[0]
    if first.headers:  # the text starts with a header: a quote, with the reply below it?
        below = _written_below_quote(first.content)
        top = "" if below else first.body.strip()
    else:
        top = first.body.strip()
        below = _written_below_quote(replies[1].content) if len(replies) > 1 else ""
    if below:
        try:
            later = _read(below)
            below = (later[0].body if later else below).strip()
        except Exception:
            below = below.strip()
    joined = "\n\n".join(p for p in (top, below) if p)
    return joined or text.strip()


class _Reply(ReplyMessage):  # type: ignore[misc]  # the library ships no type hints
    """mail-parser-reply's message, its signature words from SIGNATURE_LANGUAGES only."""

    @property
    def SIGNATURE_REGEX(self) -> Any:
        if self._signature_regex is None:
            every: list[str] = self.languages  # type: ignore[has-type]
            self.languages = [lang for lang in every if lang in SIGNATURE_LANGUAGES]
            try:
                return super().SIGNATURE_REGEX  # builds and keeps the pattern
            finally:
                self.languages = every
        return self._signature_regex


def _read(text: str) -> list[Any]:
    message = _Reply(text=text, languages=list(REPLY_LANGUAGES), keep_hyphen_lists=True)
    return list(message.read().replies)


def _written_below_quote(fragment: str) -> str:
    """In the fragment after the first quote header: the lines written under the quote
    (those after quoted `>` lines, not themselves quoted), up to the next quote header."""
    lines = fragment.split("\n")[1:]  # the header line itself
    kept: list[str] = []
    seen_quote = False
    for line in lines:
        if _QUOTED.match(line):
            seen_quote = True
            continue
        if not seen_quote:
            if line.strip():
                return ""  # not a `>` quote (Outlook's history): nothing was written below
            continue
        if _WROTE_END.search(line) or _ADDRESS_COLON.search(line):
            break  # the next quote header
        kept.append(line)
    return "\n".join(kept).strip()


def normalize_quote_headers(text: str) -> str:
    """Quote headers as mail-parser-reply finds them: a header wrapped over two or three
    lines joined into one, and a header in a language it lacks (or Gmail's "<date>,
    Name <address>:" with no "wrote") rewritten to the English "On ... wrote:"."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        joined = _header_at(lines, i)
        if joined is not None:
            header, used = joined
            out.append(header)
            i += used
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


def _header_at(lines: list[str], i: int) -> tuple[str, int] | None:
    """A quote header that starts at line `i` and spans 1 to 3 lines (the first of
    several starting like a header), followed by a quoted line (after blank lines):
    the header as one English line, and how many lines it used."""
    for span in (1, 2, 3):
        block = lines[i : i + span]
        if len(block) < span or any(not b.strip() or _QUOTED.match(b) for b in block):
            return None
        last = block[-1]
        if not (_WROTE_END.search(last) or _ADDRESS_COLON.search(last)):
            continue
        if span > 1 and not _HEADER_START.match(block[0]):
            return None
        if not _quote_follows(lines, i + span):
            return None
        one = " ".join(b.strip() for b in block)
        if re.match(r"(?i)on\s.*\swrote:$", one):
            return one, span
        core = _WROTE_END.sub("", one) if _WROTE_END.search(one) else one.rstrip(":： ")
        return f"On {core.rstrip(' ,')} wrote:", span
    return None


def _quote_follows(lines: list[str], j: int) -> bool:
    for line in lines[j : j + 3]:
        if _QUOTED.match(line):
            return True
        if line.strip():
            return False
    return False


__all__ = ["body_text", "decode_bytes", "decode_part", "html_to_text", "reply_text"]
