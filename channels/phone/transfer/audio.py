"""Audio Twilio plays during a warm transfer, made by our own text-to-speech and
served at signed, expiring URLs: what is said (`spoken_brief`, `PROMPTS`) and
how it is rendered and served (`SignedAudio`).

The spoken brief a rep hears (and the prompts of a callback offer) are rendered
with the phone channel's synthesizer (espeak-ng), sentence by sentence, into
8 kHz 16-bit PCM WAV files under `DATA_DIR/transfer-audio`. Twilio fetches a
`<Play>` URL with a plain GET that it does not sign, so the URL carries its own
proof: `GET /twilio/transfer/audio/<token>.wav`, where the token is the file's
name and an expiry time signed with the gateway's secret key (itsdangerous,
HMAC-SHA256). A forged, altered or expired token gets 403, a valid token for a
file that is gone (a finished transfer's brief) 404. On several nodes Twilio's
GET may land on a node that did not render the file: a prompt is rendered there
too, a brief is fetched from the node its name names (transfer_web.py).
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import time
from pathlib import Path

import numpy as np
from itsdangerous import BadSignature, URLSafeSerializer
from numpy.typing import NDArray

from channels.speech.audio import MULAW_RATE, resample, write_pcm_wav
from channels.speech.tts import split_sentences
from gateway.errors import AuthError, ChannelError, NotFoundError
from gateway.models import Conversation, Customer, Sentiment
from gateway.protocols import Synthesizer

log = logging.getLogger("gateway.phone.transfer_audio")

AUDIO_PATH = "/twilio/transfer/audio/{token}.wav"
CONTENT_TYPE = "audio/wav"
SALT = "gateway.phone.transfer-audio"
PAUSE_MS = 250  # between two sentences of a brief
# A file name of our own: letters, digits, `_`, `-` and (inside) `.`, as in the brief of
# transfer `node-1.3f9a...` on several nodes; never a path or a hidden file.
_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,79}$")


PROMPTS = {
    "callback-offer": "Sorry, nobody is free to take your call right now. Your request is saved,"
    " so you will not have to repeat it. Press 1 and we will call you back on this number as"
    " soon as someone is free.",
    "callback-thanks": "Thank you. We will call you back as soon as someone is free. Goodbye.",
    "callback-declined": "Alright. You can call us again, or chat with us on our website, at"
    " any time. Goodbye.",
}


def spoken_brief(customer: Customer, conversation: Conversation) -> str:
    """What a rep hears before taking a call: who, what they need, what was tried."""
    who = customer.display_name or "A caller whose name we do not know"
    queue = conversation.queue or "general"
    parts = [f"Transfer from the {queue} queue. {who} is on the line."]
    brief = conversation.brief
    if brief is not None:
        parts.append(f"They need: {brief.need.rstrip('.')}.")
        if brief.tried:
            parts.append(f"Tried so far: {'; '.join(brief.tried).rstrip('.')}.")
        if brief.missing:
            parts.append(f"Still missing: {'; '.join(brief.missing).rstrip('.')}.")
        if brief.sentiment in (Sentiment.NEGATIVE, Sentiment.ANGRY):
            parts.append(f"The customer sounds {brief.sentiment.value}.")
        parts.append(f"Suggested next step: {brief.next_step.rstrip('.')}.")
    parts.append("Press 1 to take the call.")
    return " ".join(parts)


class SignedAudio:
    """Renders texts to WAV files and signs URLs for them (see the module docstring)."""

    def __init__(
        self,
        directory: Path,
        secret: bytes,
        public_url: str,
        synthesizer: Synthesizer,
        *,
        ttl_s: int = 600,
        path: str = AUDIO_PATH,
        salt: str = SALT,
    ) -> None:
        self.directory = directory
        self.url_path = path  # where the files are served (`{token}` in it)
        self.public_url = public_url.rstrip("/")
        self.ttl_s = ttl_s
        self._synth = synthesizer
        self._serializer = URLSafeSerializer(secret, salt=salt)
        self._rendering: dict[str, asyncio.Task[Path]] = {}

    def reset(self) -> None:
        """Start empty: files of a previous run belong to transfers that are over."""
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise ValueError(f"bad audio name {name!r}")
        return self.directory / f"{name}.wav"

    async def render(self, name: str, text: str) -> Path:
        """Speak `text` into the file `name` (replacing it); ChannelError if it cannot."""
        pieces = []
        for sentence in split_sentences(text):
            speech = await self._synth.synthesize(sentence)
            samples = np.frombuffer(speech.pcm, dtype="<i2").astype(np.int16)
            pieces.append(
                await asyncio.to_thread(resample, samples, speech.sample_rate, MULAW_RATE)
            )
            pieces.append(np.zeros(MULAW_RATE * PAUSE_MS // 1000, dtype=np.int16))
        if not pieces or not any(piece.size and piece.any() for piece in pieces):
            raise ChannelError(f"no speech was synthesized for {name}")
        path = self.path(name)
        await asyncio.to_thread(_write_atomically, path, np.concatenate(pieces[:-1]))
        return path

    async def prompt(self, name: str, text: str) -> Path:
        """A fixed prompt, rendered once (the first caller to need it waits for it)."""
        task = self._rendering.get(name)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = asyncio.ensure_future(self.render(name, text))
            self._rendering[name] = task
        return await asyncio.shield(task)

    def discard(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)

    def url(self, name: str, *, now: float | None = None) -> str:
        """The public URL of the file `name`, valid for `ttl_s` from `now`."""
        self.path(name)  # checks the name
        expires = int((time.time() if now is None else now) + self.ttl_s)
        token = self._serializer.dumps([name, expires])
        return self.public_url + self.url_path.format(token=token)

    def verify(self, token: str, *, now: float | None = None) -> str:
        """The name of the file a token names: AuthError if forged or expired."""
        try:
            name, expires = self._serializer.loads(token)
        except (BadSignature, ValueError, TypeError) as exc:
            raise AuthError("the audio URL is not signed by this gateway") from exc
        if not isinstance(name, str) or not isinstance(expires, int):
            raise AuthError("the audio URL's token is malformed")
        if (time.time() if now is None else now) > expires:
            raise AuthError(f"the audio URL for {name} has expired")
        try:
            self.path(name)
        except ValueError as exc:
            raise AuthError(str(exc)) from exc
        return name

    def resolve(self, token: str, *, now: float | None = None) -> Path:
        """The file a token names: AuthError if forged or expired, NotFoundError if it is
        not here (a finished transfer's brief, or one rendered on another node)."""
        path = self.path(self.verify(token, now=now))
        if not path.is_file():
            raise NotFoundError(f"no audio {path.stem} here (its transfer is over?)")
        return path


def audio_owner(name: str) -> str | None:
    """The node that rendered audio `name`, when its name says so: a transfer's brief
    on several nodes is `brief-<node>.<id>` (the transfer's id names its node)."""
    node, dot, _ = name.removeprefix("brief-").partition(".")
    return node if name.startswith("brief-") and dot and node else None


def _write_atomically(path: Path, pcm: NDArray[np.int16]) -> None:
    # Twilio may fetch while a file is replaced: it sees the old or the new one, never half.
    partial = path.with_suffix(".part")
    write_pcm_wav(partial, pcm, MULAW_RATE)
    partial.replace(path)


__all__ = ["AUDIO_PATH", "CONTENT_TYPE", "PROMPTS", "SignedAudio", "audio_owner", "spoken_brief"]
