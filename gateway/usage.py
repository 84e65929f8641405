"""What a conversation consumed, as it is measured (docs/reports.md, "Cost").

Each measurement is a `Usage`, stored as one row of the `usage` table:

- with the turn it belongs to: a `usage` event in a `TurnRecord` (the LLM's tokens
  of an agent turn, a call's recognised and synthesised speech with its
  `phone.call_ended`) is written as a usage row by `record_turn`, in the same
  transaction;
- on its own (`UsageRecorder`): what a provider reports later, an SMS's segments
  (Twilio's REST reply, an inbound webhook's NumSegments) and a call's duration
  (its status callback's CallDuration), under the provider's id (`source`), so a
  retried callback counts once.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import Field

from gateway.models import Frozen
from gateway.protocols import EventDraft

USAGE_EVENT = "usage"  # a TurnRecord event stored as a usage row, not in `events`


class Usage(Frozen):
    """Quantities consumed by one conversation (each 0 when not measured)."""

    llm_prompt_tokens: int = Field(default=0, ge=0)
    llm_completion_tokens: int = Field(default=0, ge=0)
    stt_ms: int = Field(default=0, ge=0, description="Speech recognised (audio transcribed).")
    tts_ms: int = Field(default=0, ge=0, description="Speech synthesised (audio rendered).")
    sms_segments: int = Field(default=0, ge=0)
    call_s: int = Field(default=0, ge=0, description="Call time, as Twilio bills it.")

    def empty(self) -> bool:
        return not any(self.model_dump().values())

    def event(self) -> EventDraft:
        """This usage as an event of a turn (stored as a usage row with the turn)."""
        return EventDraft(kind=USAGE_EVENT, data=self.model_dump())

    @classmethod
    def of(cls, data: dict[str, Any]) -> Usage:
        """From a `usage` event's data (unknown keys are ignored)."""
        return cls.model_validate({k: v for k, v in data.items() if k in cls.model_fields})


USAGE_COLUMNS = tuple(Usage.model_fields)


class UsageRecorder(Protocol):
    """Usage a provider reports outside any turn (store/usage_store.py)."""

    async def record(self, conversation_id: int, usage: Usage, *, source: str) -> bool:
        """Store `usage` of the conversation under the provider's id `source`; False
        (nothing stored) when that source was recorded before."""
        ...

    async def record_call(self, call_sid: str, usage: Usage) -> int | None:
        """Store `usage` of the conversation whose call is `call_sid` (its
        `phone.call_started` event), once per sid; the conversation's id, or None
        when no conversation has that call or it was recorded before."""
        ...


__all__ = ["USAGE_COLUMNS", "USAGE_EVENT", "Usage", "UsageRecorder"]
