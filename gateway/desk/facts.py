"""The reports' facts as columns: one numpy array per fact over a period's
conversations, so the summary and the cost section count with masks and array
arithmetic instead of a Python loop over 100,000 conversations (bench/reports.py).

Times are ms since the epoch as float64 (exact: integers below 2**53), NaN where
the conversation has none (never handed over, not closed, not rated...); their
differences and divisions are the same IEEE operations as on Python numbers, so the
figures are the same to the last bit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gateway.desk.store import ConversationFacts

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]
Objects = NDArray[np.object_]

# ConversationFacts' fields (next responses apart); the state is not counted.
_KINDS = ("id", "channel", "state", "queue", "created_at", "closed_at", "handover_at",
          "resolved_at", "resolved_how", "rep_reply_at", "score", "queue_wait_ms",
          "handle_ms")  # fmt: skip
_WHOLE = {"id", "created_at"}
# The store's joined columns (gateway/store/desk_sql.py NUMBERS, TEXTS), as fields.
# Texts are joined on a control character (US, 0x1f) that no channel, queue or
# resolution's `how` holds.
NUMBERS = ("id", "created_at", "closed_at", "handover_at", "resolved_at", "rep_reply_at",
           "score", "queue_wait_ms", "handle_ms")  # fmt: skip
TEXTS = ("channel", "queue", "resolved_how")


@dataclass(frozen=True)
class FactColumns:
    """A period's conversations, a column per fact (ConversationFacts' meanings)."""

    id: Ints
    channel: Objects  # str
    queue: Objects  # str ("" or None: none)
    created_at: Ints
    closed_at: Floats
    handover_at: Floats
    resolved_at: Floats
    resolved_how: Objects  # str ("" or None: none)
    rep_reply_at: Floats
    score: Floats
    queue_wait_ms: Floats
    handle_ms: Floats
    # Every next response of these conversations: the customer's first message
    # awaiting a rep, the rep's reply (one pair per wait, in no particular order).
    asked_at: Floats
    replied_at: Floats

    def __len__(self) -> int:
        return len(self.id)

    @classmethod
    def of_joined(cls, columns: Sequence[str | None], responses: Sequence[str | None],
                  text_sep: str) -> FactColumns:  # fmt: skip
        """From the store's two reads: NUMBERS then TEXTS, each column's values joined
        (numbers on ",", NULL as "nan"; texts on `text_sep`), and the responses' asked
        at and replied at joined (None: no rows)."""
        arrays: dict[str, Any] = {}
        for name, joined in zip((*NUMBERS, *TEXTS), columns, strict=True):
            if name in TEXTS:
                values = [] if joined is None else joined.split(text_sep)
                arrays[name] = np.array(values, dtype=object)
            else:
                arrays[name] = _numbers(joined, np.int64 if name in _WHOLE else np.float64)
        asked, replied = (_numbers(joined, np.float64) for joined in responses)
        return cls(**arrays, asked_at=asked, replied_at=replied)

    @classmethod
    def of_rows(
        cls, rows: Sequence[Sequence[Any]], responses: Sequence[Sequence[Any]]
    ) -> FactColumns:
        """From rows in ConversationFacts' order (next responses apart) and next
        responses (conversation id, asked at, replied at)."""
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(_KINDS)
        arrays: dict[str, Any] = {}
        for name, values in zip(_KINDS, columns, strict=True):
            if name in TEXTS:
                arrays[name] = np.array(values, dtype=object)
            elif name != "state":  # None -> NaN
                arrays[name] = np.array(values, dtype=np.int64 if name in _WHOLE else np.float64)
        pairs = list(zip(*responses, strict=True)) if responses else [(), (), ()]
        return cls(**arrays, asked_at=np.array(pairs[1], dtype=np.float64),
                   replied_at=np.array(pairs[2], dtype=np.float64))  # fmt: skip

    @classmethod
    def of(cls, facts: Iterable[ConversationFacts]) -> FactColumns:
        """From `ConversationFacts` tuples (tests build a few by hand)."""
        rows: list[tuple[Any, ...]] = []
        responses: list[tuple[int, int, int]] = []
        for f in facts:
            rows.append(tuple(f[: len(_KINDS)]))
            responses += [(f.id, asked, replied) for asked, replied in f.next_responses]
        return cls.of_rows(rows, responses)


def _numbers(joined: str | None, dtype: type[np.generic]) -> Any:
    """Numbers joined on "," (NaN written "nan"): numpy parses them in C."""
    if not joined:
        return np.zeros(0, dtype=dtype)
    return np.fromstring(joined, dtype=np.float64, sep=",").astype(dtype)


def known(column: Floats) -> NDArray[np.bool_]:
    """Where a nullable column has a value."""
    return ~np.isnan(column)


__all__ = ["FactColumns", "Floats", "known"]
