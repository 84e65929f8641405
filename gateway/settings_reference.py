"""The configuration reference, rendered as Markdown from the `Settings` model.

The documentation build (`docs/hooks/settings_reference.py`) puts this table into
`docs/configuration.md`, so the reference is the code's own account of each setting and
cannot drift from it; `tests/test_docs.py` fails when a setting has no description.
Sections follow the `# --- title` comments that group the fields in `gateway/settings.py`.
"""

from __future__ import annotations

import inspect
import json
import re
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from gateway.settings import Settings
from gateway.settings_sources import ENV_PREFIX

MARKER = "<!-- settings-reference -->"
_SECTION = re.compile(r"^    # --- (?P<title>.+)$")
_FIELD = re.compile(r"^    (?P<name>[a-z][a-z0-9_]*)\s*:")
_CODE_SPAN = re.compile(r"(`[^`]*`)")
_NAME = re.compile(r"\b(?:GATEWAY_)?[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")


def env_name(field: str) -> str:
    """The environment variable that sets `field` (pydantic-settings' env prefix + name)."""
    return f"{ENV_PREFIX}{field.upper()}"


def undocumented(model: type[BaseSettings] = Settings) -> list[str]:
    """Environment names of the settings that have no description."""
    return [
        env_name(name)
        for name, info in model.model_fields.items()
        if not (info.description or "").strip()
    ]


def render(model: type[BaseSettings] = Settings) -> str:
    """The reference as Markdown: one table per section, one row per setting."""
    out: list[str] = []
    names = {name.upper() for name in model.model_fields}
    for title, fields in _sections(model):
        out += [f"### {title}", "", "| variable | type | default | meaning |", "|---|---|---|---|"]
        for name in fields:
            info = model.model_fields[name]
            anchor = env_name(name).lower()
            cells = [
                f'<span id="{anchor}"></span>`{env_name(name)}`',
                _type(info),
                _default(info),
                _text(info.description or "", names),
            ]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def _sections(model: type[BaseSettings]) -> Iterator[tuple[str, list[str]]]:
    """Fields grouped by the `# --- title` comments above them, in source order."""
    try:
        lines = textwrap.dedent(inspect.getsource(model)).splitlines()
    except (OSError, TypeError):  # no source at hand: one section, declaration order
        lines = []
    seen: set[str] = set()
    title, fields = "General", list[str]()
    for line in lines:
        if heading := _SECTION.match(line):
            if fields:
                yield title, fields
            text = re.split(r" \(|;", heading["title"], maxsplit=1)[0].strip()
            title, fields = text[:1].upper() + text[1:], []
        elif (field := _FIELD.match(line)) and field["name"] in model.model_fields.keys() - seen:
            seen.add(field["name"])
            fields.append(field["name"])
    if fields:
        yield title, fields
    rest = [name for name in model.model_fields if name not in seen]
    if rest:
        yield "Other", rest


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or any(_is_secret(arg) for arg in get_args(annotation))


def _type(info: FieldInfo) -> str:
    annotation = info.annotation
    kind = _type_name(annotation)
    bounds = []
    for meta in info.metadata:
        for attr, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            if isinstance(meta, getattr(annotated_types, attr.capitalize())):
                bounds.append(f"{sign} {_scalar(getattr(meta, attr))}")
        if isinstance(meta, annotated_types.MaxLen):
            bounds.append(f"at most {meta.max_length} characters")
        pattern = getattr(meta, "pattern", None)
        if isinstance(pattern, str):
            bounds.append(f"matching `{pattern}`")
    return kind + (f" ({', '.join(bounds)})" if bounds else "")


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin in (Union, types.UnionType):
        if _is_secret(annotation):
            return "secret"
        parts = [_type_name(arg) for arg in args if arg is not type(None)]
        return " or ".join(parts)
    if origin is Literal:
        return "one of " + ", ".join(f"`{arg}`" for arg in args)
    if origin is list:
        return f"list of {_type_name(args[0])} (JSON list; array in TOML)"
    if origin is dict:
        return "JSON object (table in TOML)"
    simple = {str: "text", int: "integer", float: "number", bool: "`true` / `false`",
              Path: "path", SecretStr: "secret"}  # fmt: skip
    return simple.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        value: Any = info.default_factory()  # type: ignore[call-arg]
    elif info.default is PydanticUndefined:
        return "*(required)*"
    else:
        value = info.default
    if _is_secret(info.annotation) and value is not None:
        return "*(set; hidden)*"
    if value is None:
        return "*(unset)*"
    if value == "" or value == [] or value == {}:
        return "*(empty)*"
    if isinstance(value, Path):
        text = str(value) if value.is_absolute() else f"./{value}"
    elif isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, (list, dict)):
        text = json.dumps(value)
    else:
        text = _scalar(value)
    return _code(text)


def _scalar(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _code(text: str) -> str:
    """`text` as a code span (Python-Markdown's tables never split a row inside one)."""
    return f"``{text}``" if "`" in text else f"`{text}`"


def _text(description: str, names: set[str]) -> str:
    """A description as table-cell Markdown: names of settings become links to their rows."""
    parts = []
    for i, part in enumerate(_CODE_SPAN.split(description.strip())):
        if i % 2:  # a code span: kept as written
            parts.append(part)
            continue
        part = part.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        part = part.replace("|", "\\|").replace("*", "\\*")
        parts.append(_NAME.sub(lambda m: _link(m[0], names), part))
    return "".join(parts)


def _link(word: str, names: set[str]) -> str:
    bare = word.removeprefix(ENV_PREFIX)
    if bare not in names:
        return word
    return f"[`{ENV_PREFIX}{bare}`](#{env_name(bare.lower()).lower()})"


if __name__ == "__main__":  # `python -m gateway.settings_reference`: the table, without the site
    print(render())
