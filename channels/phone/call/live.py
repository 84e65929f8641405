"""Speaking an answer while the agent writes it: the call's `LiveReply`
(gateway/streaming.py).

A `LiveAnswer` is one answer on one call. The first finished sentence queues
an `Utterance` on the call's `Player` at once (not before: caller speech
while the agent is still thinking is a new turn, not a barge-in); each
sentence starts rendering the moment it arrives (at most `RENDER_AHEAD` in
flight), so the caller hears the first sentence while the rest is written.

The answer is not stored yet while it plays, so its utterance carries a
provisional (negative) message id. When the turn is stored, `finish(message)`
ties it to the stored message: the utterance takes the message's id and text,
whatever of the text was not streamed (normally nothing) is queued behind the
streamed sentences, and a cut that happened before the message existed (a
barge-in, a hang-up) is applied to it then, so the stored text is still what
the caller heard. `finish(None)` (the turn failed before storing anything)
ends the utterance after what was said.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections import deque
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING

from channels.phone.call.playback import Chunk, Played, Player, Utterance
from channels.phone.call.voice import to_mulaw
from channels.phone.services import TurnTiming
from channels.speech.tts import split_sentences
from gateway.errors import GatewayError
from gateway.models import Message
from gateway.protocols import LiveReply, Speech, Synthesizer

log = logging.getLogger("gateway.phone.live")

RENDER_AHEAD = 3  # sentences rendering at once for one answer (the synthesizer is shared)


class _Render:
    __slots__ = ("task", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.task: asyncio.Task[Speech] | None = None


class LiveAnswer:
    """One streamed answer on a call; see the module docstring."""

    def __init__(
        self,
        provisional_id: int,
        player: Player,
        synth: Synthesizer,
        *,
        turn: TurnTiming | None,
        now_ms: Callable[[], int],
        on_started: Callable[[TurnTiming], None],
        on_played: Callable[[Played], None],
        on_bound: Callable[[LiveAnswer, Message | None], None],
    ) -> None:
        self.id = provisional_id
        self.turn = turn
        self.message: Message | None = None
        self.said: list[str] = []
        self._player, self._synth = player, synth
        self._now_ms, self._on_started = now_ms, on_started
        self._on_played, self._on_bound = on_played, on_bound
        self._renders: deque[_Render] = deque()
        self._wake = asyncio.Event()
        self._utterance: Utterance | None = None
        self._input_done = False  # finish() was called
        self._silenced = False  # the utterance stopped early (barge-in, hang-up)
        self._cut: Played | None = None  # what was heard, reported before the message existed

    # ------------------------------------------------------------- LiveReply

    def sentence(self, text: str) -> None:
        """A finished sentence of the answer: render it now, play it in turn."""
        if self._input_done or self._silenced:
            return
        self.said.append(text)
        self._add(text)

    def finish(self, message: Message | None) -> None:
        """The turn is stored (`message`: its reply) or failed (None)."""
        if self._input_done:
            return
        self._input_done = True
        self._wake.set()
        self.message = message
        if message is not None:
            if self._utterance is not None:
                self._utterance.message_id, self._utterance.text = message.id, message.text
            rest = _rest(message.text, self.said)
            if rest and not self._silenced:
                self._add(rest)
        self._on_bound(self, message)
        cut, self._cut = self._cut, None
        if cut is not None and message is not None:
            self._on_played(dataclasses.replace(cut, message_id=message.id, text=message.text))

    # -------------------------------------------------------------- playback

    def played(self, played: Played) -> None:
        """The player reports on the utterance while it still has its provisional id."""
        if self.message is not None:
            self._on_played(dataclasses.replace(played, message_id=self.message.id,
                                                text=self.message.text))  # fmt: skip
        elif not self._input_done:
            self._cut = played  # applied once the message is stored

    def _add(self, text: str) -> None:
        for piece in split_sentences(text):
            self._renders.append(_Render(piece))
        self._start_renders()
        self._wake.set()
        if self._utterance is None and self._renders:
            self._utterance = Utterance(
                message_id=self.message.id if self.message else self.id,
                text=self.message.text if self.message else "",
                chunks=self._chunks(),
            )
            try:
                self._player.enqueue(self._utterance)
            except RuntimeError:  # the call is over: nothing more will be heard
                self._silenced = True
                return
            if self.turn is not None:
                self.turn.reply_ms, self.turn.streamed = self._now_ms(), bool(self.said)
                self._on_started(self.turn)

    def _start_renders(self) -> None:
        for render in list(self._renders)[:RENDER_AHEAD]:
            if render.task is None:
                render.task = asyncio.ensure_future(self._synth.synthesize(render.text))

    async def _chunks(self) -> AsyncGenerator[Chunk, None]:
        try:
            while True:
                while not self._renders:
                    if self._input_done:
                        return
                    self._wake.clear()
                    await self._wake.wait()
                render = self._renders[0]
                self._start_renders()
                assert render.task is not None
                try:
                    speech = await render.task
                    audio = await asyncio.to_thread(to_mulaw, speech)
                except GatewayError as exc:
                    log.warning("cannot speak %r: %s", render.text[:60], exc)
                    audio = b""
                self._renders.popleft()
                yield Chunk(text=render.text, mulaw=audio)
        finally:
            if self._renders or not self._input_done:
                self._silenced = True  # stopped early: the rest is never said
            for render in self._renders:
                if render.task is None:
                    continue
                if render.task.done() and not render.task.cancelled():
                    with contextlib.suppress(BaseException):
                        render.task.exception()  # retrieved: a failure past a barge-in
                else:
                    render.task.cancel()
            self._renders.clear()


def _rest(text: str, said: list[str]) -> str:
    """What of the stored `text` was not streamed (the dispatcher makes it start with
    what was said; anything else is logged and not said twice)."""
    full = " ".join(text.split())
    spoken = " ".join(" ".join(said).split())
    if full.startswith(spoken):
        return full[len(spoken) :].strip()
    log.warning("stored reply does not start with the streamed sentences; not repeating it")
    return ""


if TYPE_CHECKING:
    _seam: type[LiveReply] = LiveAnswer  # mypy checks LiveAnswer fits the dispatcher's seam

__all__ = ["RENDER_AHEAD", "LiveAnswer"]
