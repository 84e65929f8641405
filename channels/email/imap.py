"""The IMAP poller: the alternative to the embedded SMTP server, for an existing mailbox.

Every `GATEWAY_EMAIL_IMAP_INTERVAL_S` it logs in to `GATEWAY_EMAIL_IMAP`
(`imaps://user:pass@host[:port]/MAILBOX`; `imap://` only for a server on the same
machine), reads the unseen mail with `BODY.PEEK[]` (which leaves it unseen), stores
each mail exactly as the SMTP server would, and marks it `\\Seen` only after it is
committed, so a crash in between reads it again (and the per-mailbox Message-ID key
keeps it from being stored twice). Automatic mail, and mail over
`GATEWAY_EMAIL_MAX_BYTES`, is marked seen and not stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from aioimaplib import aioimaplib

from channels.email.channel import Accepted, EmailChannel
from channels.email.transport import accept_mail
from gateway.dispatch import Dispatcher
from gateway.settings import Settings

log = logging.getLogger("gateway.email.imap")

_UIDS = re.compile(rb"^(?:SEARCH\s*)?([\d\s]*)$")
MAX_PER_POLL = 200


@dataclass(frozen=True)
class ImapMailbox:
    host: str
    port: int
    tls: bool
    username: str
    password: str
    mailbox: str
    timeout_s: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> ImapMailbox | None:
        if settings.email_imap is None:
            return None
        parts = urlsplit(settings.email_imap.get_secret_value())
        tls = parts.scheme == "imaps"
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or (993 if tls else 143),
            tls=tls,
            username=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            mailbox=unquote(parts.path.strip("/")) or "INBOX",
        )


class ImapPoller:
    """Polls one mailbox into the email channel; `run` until cancelled."""

    def __init__(
        self, mailbox: ImapMailbox, channel: EmailChannel, dispatcher: Dispatcher,
        interval_s: float,
    ) -> None:  # fmt: skip
        self.mailbox = mailbox
        self.channel = channel
        self.dispatcher = dispatcher
        self.interval_s = interval_s

    async def run(self) -> None:
        task = asyncio.current_task()
        while True:
            try:
                await self.poll_once()
            except (aioimaplib.Abort, aioimaplib.CommandTimeout, OSError, TimeoutError,
                    ImapError) as exc:  # fmt: skip
                log.warning("IMAP poll of %s failed: %s", self.mailbox.host, exc)
            # aioimaplib waits with asyncio.wait_for, which on Python 3.11 can swallow a
            # cancellation that lands as its command completes: without this check the
            # poller would go on polling and shutdown would wait for it forever.
            if task is not None and task.cancelling():
                raise asyncio.CancelledError
            await asyncio.sleep(self.interval_s)

    def _client(self) -> aioimaplib.IMAP4:
        box = self.mailbox
        if box.tls:
            return aioimaplib.IMAP4_SSL(
                host=box.host, port=box.port, timeout=box.timeout_s,
                ssl_context=ssl.create_default_context(),
            )  # fmt: skip
        return aioimaplib.IMAP4(host=box.host, port=box.port, timeout=box.timeout_s)

    async def poll_once(self) -> int:
        """Read and store the unseen mail once; how many mails were taken."""
        box = self.mailbox
        client = self._client()
        await client.wait_hello_from_server()
        _check(await client.login(box.username, box.password), "LOGIN")
        try:
            _check(await client.select(box.mailbox), "SELECT")
            found = _check(await client.uid_search("UNSEEN"), "SEARCH")
            uids = [u.decode() for line in found.lines if (m := _UIDS.match(bytes(line)))
                    for u in m.group(1).split()][:MAX_PER_POLL]  # fmt: skip
            taken = 0
            for uid in uids:
                fetched = _check(await client.uid("fetch", uid, "(BODY.PEEK[])"), "FETCH")
                raw = next((bytes(x) for x in fetched.lines if isinstance(x, bytearray)), None)
                if raw is None:
                    continue
                if len(raw) > self.channel.settings.email_max_bytes:
                    log.warning("IMAP mail %s refused: %d bytes is over GATEWAY_EMAIL_MAX_BYTES",
                                uid, len(raw))  # fmt: skip
                    answer = Accepted.TOO_BIG
                else:
                    answer = await accept_mail(
                        self.channel, self.dispatcher, raw, None, [self.channel.address]
                    )
                if answer == Accepted.FAILED:
                    continue  # left unseen: read again on the next poll
                _check(await client.uid("store", uid, "+FLAGS", "(\\Seen)"), "STORE")
                taken += 1
            return taken
        finally:
            with contextlib.suppress(
                aioimaplib.Abort, aioimaplib.CommandTimeout, OSError, TimeoutError
            ):
                await client.logout()


class ImapError(Exception):
    """The IMAP server answered a command with NO or BAD."""


def _check(response: aioimaplib.Response, what: str) -> aioimaplib.Response:
    if response.result != "OK":
        raise ImapError(f"{what}: {response.result} {response.lines[-1:]!r}")
    return response


__all__ = ["ImapMailbox", "ImapPoller"]
