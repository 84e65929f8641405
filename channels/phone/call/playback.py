"""Playing agent speech into a Twilio Media Stream: pacing, marks and barge-in.

One `Player` per call. Each agent message is an `Utterance`: an async
iterator of `Chunk`s (a sentence, or a pre-rendered prompt, as 8 kHz μ-law),
so the first sentence plays while the next ones are still being synthesized.

Pacing. Frames (20 ms) go out on a monotonic-clock schedule: frame n of a run
is due to play at `anchor + n * 20 ms` and is sent `lead_s` (100 ms) ahead
of that, so Twilio's buffer never holds more than a few frames and a `clear`
has little to throw away. A whole answer is never sent in a burst. When the
next chunk is late (still being synthesized) the schedule restarts at "now".

Marks. After each chunk we send a `mark` named `<message id>:<chunk index>`;
Twilio echoes it when the audio before it has played, so an echoed mark means
the caller heard that chunk.

Heard text. When the caller barges in we send `clear` (Twilio drops what it
has queued and echoes the outstanding marks at once, so marks that arrive
after the `clear` prove nothing and are ignored). What the caller heard of a
message is then: every chunk whose mark came back before the `clear`, plus,
of the first chunk whose mark had not, the leading words in proportion to the
share of its audio that had played by the schedule at the moment of the
`clear` (rounded down). Messages queued behind it were not heard at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field

from channels.phone.twilio import codec
from channels.speech.audio import FRAME_MS, split_frames

log = logging.getLogger("gateway.phone.playback")

FRAME_S = FRAME_MS / 1000
LEAD_S = 0.1  # audio sent ahead of the playback schedule


@dataclass(frozen=True, slots=True)
class Chunk:
    """One piece of speech: its words and its audio (8 kHz μ-law; empty if it failed)."""

    text: str
    mulaw: bytes


@dataclass(eq=False)
class Utterance:
    """One stored agent message to speak, chunk by chunk."""

    message_id: int
    text: str  # the message as stored
    chunks: AsyncGenerator[Chunk, None]


@dataclass(frozen=True, slots=True)
class Played:
    """How far the caller got through one message."""

    message_id: int
    text: str  # the message as stored
    heard: str  # the words the caller heard
    complete: bool  # every chunk played and was confirmed by its mark
    start_ms: int | None  # call time the first frame was due to play (None: never started)
    end_ms: int | None  # call time the last mark came back, or playback was cut
    reason: str  # "played", "barge_in", "hangup"


@dataclass(eq=False)
class _Chunk:
    text: str
    mark: str
    frames: int
    play_start: float | None = None  # loop time its first frame is due to play
    heard: bool = False


@dataclass(eq=False)
class _Playing:
    utterance: Utterance
    chunks: list[_Chunk] = field(default_factory=list)
    all_sent: bool = False
    failed: bool = False  # a chunk had no audio (synthesis failed)
    start: float | None = None
    end: float | None = None


class Player:
    """Speaks queued utterances on one stream; see the module docstring."""

    def __init__(
        self,
        stream_sid: str,
        send: Callable[[str], Awaitable[None]],
        *,
        origin: float,
        on_played: Callable[[Played], None],
        on_started: Callable[[int], None] | None = None,
        lead_s: float = LEAD_S,
    ) -> None:
        self.stream_sid = stream_sid
        self._send = send
        self._origin = origin  # loop time of call time 0
        self._on_played = on_played
        self._on_started = on_started  # a message's first frame was sent (its id)
        self._lead = lead_s
        self._loop = asyncio.get_running_loop()
        self._queue: deque[Utterance] = deque()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._sending: _Playing | None = None
        self._playing: list[_Playing] = []  # started, waiting for marks
        self._marks: dict[str, tuple[_Playing, _Chunk]] = {}
        self._anchor = 0.0
        self._frames = 0
        self._closed = False
        self._task = asyncio.create_task(self._run())

    # ----------------------------------------------------------------- state

    @property
    def active(self) -> bool:
        """Whether anything is queued, being sent, or sent and not yet heard."""
        return bool(self._queue) or self._sending is not None or bool(self._playing)

    def enqueue(self, utterance: Utterance) -> None:
        """Speak `utterance` after whatever is queued."""
        if self._closed:
            raise RuntimeError("the player is closed")
        self._queue.append(utterance)
        self._idle.clear()
        self._wakeup.set()

    async def wait_idle(self) -> None:
        """Wait until everything queued has been heard (or cut)."""
        await self._idle.wait()

    def on_mark(self, name: str) -> None:
        """Twilio echoed a mark: the chunk before it has played."""
        entry = self._marks.pop(name, None)
        if entry is None:
            return  # cleared by a barge-in, or not ours
        playing, chunk = entry
        chunk.heard = True
        playing.end = self._loop.time()
        self._check_done(playing)

    # ---------------------------------------------------------------- sender

    async def _run(self) -> None:
        while True:
            while not self._queue:
                self._wakeup.clear()
                self._update_idle()
                await self._wakeup.wait()
            playing = _Playing(self._queue.popleft())
            self._playing.append(playing)
            self._sending = playing
            try:
                await self._send_utterance(playing)
            except (ConnectionError, RuntimeError) as exc:  # the socket went away
                log.info("playback stopped: %s", exc)
                playing.failed = True
            except Exception:  # a bug costs this message, not the player
                log.exception("playback of message %s failed", playing.utterance.message_id)
                playing.failed = True
            finally:
                self._sending = None
            playing.all_sent = True
            self._check_done(playing)

    async def _send_utterance(self, playing: _Playing) -> None:
        utterance = playing.utterance
        first = True
        async with contextlib.aclosing(utterance.chunks) as chunks:
            async for chunk in chunks:
                frames = split_frames(chunk.mulaw)
                if not frames:
                    playing.failed = True
                    continue
                mark = f"{utterance.message_id}:{len(playing.chunks)}"
                state = _Chunk(text=chunk.text, mark=mark, frames=len(frames))
                playing.chunks.append(state)
                for index, frame in enumerate(frames):
                    due = self._next_due()
                    if index == 0:
                        state.play_start = due
                        if playing.start is None:
                            playing.start = due
                    wait = due - self._lead - self._loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    await self._send(codec.format_media(self.stream_sid, frame))
                    self._frames += 1
                    if first:
                        first = False
                        if self._on_started is not None:
                            self._on_started(utterance.message_id)
                self._marks[mark] = (playing, state)
                await self._send(codec.format_mark(self.stream_sid, mark))

    def _next_due(self) -> float:
        """When the next frame will play; restarts the schedule after a gap."""
        now = self._loop.time()
        due = self._anchor + self._frames * FRAME_S
        if due < now:
            self._anchor, self._frames = now, 0
            due = now
        return due

    # ---------------------------------------------------------- completion

    def _check_done(self, playing: _Playing) -> None:
        if not playing.all_sent or any(c.mark in self._marks for c in playing.chunks):
            self._update_idle()
            return
        if playing in self._playing:
            self._playing.remove(playing)
            complete = not playing.failed and all(c.heard for c in playing.chunks)
            heard = " ".join(c.text for c in playing.chunks if c.heard)
            self._on_played(self._result(playing, heard, complete, playing.end, "played"))
        self._update_idle()

    def _update_idle(self) -> None:
        if self.active:
            self._idle.clear()
        else:
            self._idle.set()

    def _result(
        self, playing: _Playing, heard: str, complete: bool, end: float | None, reason: str
    ) -> Played:
        start = playing.start
        return Played(
            message_id=playing.utterance.message_id,
            text=playing.utterance.text,
            heard=heard,
            complete=complete,
            start_ms=None if start is None else self._call_ms(start),
            end_ms=None if start is None or end is None else self._call_ms(max(end, start)),
            reason=reason,
        )

    def _call_ms(self, at: float) -> int:
        return max(0, round((at - self._origin) * 1000))

    # ------------------------------------------------------------- barge-in

    async def interrupt(self) -> list[Played]:
        """Barge-in: send `clear`, drop everything queued, report what was heard."""
        if not self.active:
            return []
        self._task.cancel()  # before the clear: not one more frame after it
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self._send(codec.format_clear(self.stream_sid))
        return await self._stop("barge_in", restart=True)

    async def close(self) -> list[Played]:
        """The call ended: stop, and report what was heard of anything in progress."""
        if self._closed:
            return []
        self._closed = True
        self._task.cancel()
        return await self._stop("hangup", restart=False)

    async def _stop(self, reason: str, *, restart: bool) -> list[Played]:
        at = self._loop.time()
        await asyncio.wait([self._task])  # let it unwind (its chunk source is closed)
        results = [self._result(p, _heard_at(p, at), False, at, reason) for p in self._playing]
        results += [self._result(_Playing(u), "", False, None, reason) for u in self._queue]
        self._playing.clear()
        self._queue.clear()
        self._marks.clear()
        self._sending = None
        self._anchor, self._frames = 0.0, 0
        if restart:
            self._task = asyncio.create_task(self._run())
        self._update_idle()
        for played in results:
            self._on_played(played)
        return results


def _heard_at(playing: _Playing, at: float) -> str:
    """Chunks confirmed by their mark, plus the played share of the first one that is not."""
    parts: list[str] = []
    for chunk in playing.chunks:
        if chunk.heard:
            parts.append(chunk.text)
            continue
        if chunk.play_start is not None and chunk.frames:
            share = (at - chunk.play_start) / (chunk.frames * FRAME_S)
            words = chunk.text.split()
            count = math.floor(len(words) * min(max(share, 0.0), 1.0))
            if count:
                parts.append(" ".join(words[:count]))
        break
    return " ".join(parts)


__all__ = ["FRAME_S", "LEAD_S", "Chunk", "Played", "Player", "Utterance"]
