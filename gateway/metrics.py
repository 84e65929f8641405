"""Prometheus metrics, one registry per app (no module-level global state)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from gateway.models import Direction, Message

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A phone turn's stages, from the caller's last word to the first audio of the answer.
VOICE_STAGES = ("endpointing", "stt", "agent", "tts", "total")
VOICE_BUCKETS = (
    0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0
)  # fmt: skip


class Metrics:
    """Everything the gateway counts. Export with `render()`."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.messages = Counter(
            "gateway_messages",
            "Messages stored, by channel and direction.",
            ["channel", "direction"],
            registry=self.registry,
        )
        self.duplicates = Counter(
            "gateway_duplicate_messages",
            "Inbound messages dropped as retries of one already stored.",
            ["channel"],
            registry=self.registry,
        )
        self.reply_latency = Histogram(
            "gateway_reply_latency_seconds",
            "Time from an inbound message being received to the reply being handed to its channel.",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.handovers = Counter(
            "gateway_handovers",
            "Conversations handed to a human queue, by queue.",
            ["queue"],
            registry=self.registry,
        )
        self.agent_failures = Counter(
            "gateway_agent_failures",
            "Agent turns that failed or timed out and fell back.",
            ["reason"],
            registry=self.registry,
        )
        self.connections = Gauge(
            "gateway_open_connections",
            "Live client connections, by channel.",
            ["channel"],
            registry=self.registry,
        )
        self.bad_input = Counter(
            "gateway_bad_input",
            "Malformed requests or frames refused, by channel and reason.",
            ["channel", "reason"],
            registry=self.registry,
        )

        self.voice_stages = Histogram(
            "gateway_voice_stage_seconds",
            "Phone turns, by stage: endpointing (the caller's speech end to the end of the"
            " turn), stt (to the transcript), agent (to the answer handed to the call), tts"
            " (to its first audio frame sent) and total (speech end to first audio).",
            ["stage"],
            buckets=VOICE_BUCKETS,
            registry=self.registry,
        )
        self.early_transcripts = Counter(
            "gateway_voice_early_transcripts",
            "Phone utterances transcribed while the end-of-turn silence ran: used (the turn"
            " ended there) or dropped (the caller spoke on).",
            ["outcome"],
            registry=self.registry,
        )
        self.transfer_steps = Counter(
            "gateway_transfer_steps",
            "Warm transfer steps of calls: a state reached (ringing, briefing, connected,"
            " completed, callback_offered, abandoned, failed) or a rep who did not take the"
            " call (rep_no-answer, rep_busy, rep_failed, rep_canceled, rep_declined).",
            ["step"],
            registry=self.registry,
        )

    def count_stored(self, messages: Iterable[Message]) -> None:
        """Count messages stored outside the dispatcher's turns (a rep's replies, queue
        notices): outbound ones in `gateway_messages` as the agent's replies are;
        private notes are not messages to anyone."""
        for message in messages:
            if message.direction is Direction.OUTBOUND:
                self.messages.labels(message.channel.value, "outbound").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
