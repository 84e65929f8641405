"""Email test parts shared by the email channel tests and the cross-channel test: a local
SMTP server acting as the relay (it catches the agent's replies) and a customer's mail
client (real `smtplib` against the app's embedded SMTP server)."""

from __future__ import annotations

import asyncio
import smtplib
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from aiosmtpd.smtp import SMTP, Envelope, Session

from channels.email.state import EMAIL
from gateway.app import DISPATCHER, STORE
from gateway.protocols import Store

SUPPORT = "support@example.com"


class CatchingRelay:
    """An SMTP server on the test's loop that keeps every mail it is given."""

    def __init__(self) -> None:
        self.mails: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.server: asyncio.Server | None = None
        self.port = 0
        self.arrived = asyncio.Event()  # set on every mail

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        assert isinstance(raw, bytes)
        mail = message_from_bytes(raw, policy=policy.default)
        assert isinstance(mail, EmailMessage)
        self.mails.append(mail)
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        self.arrived.set()
        return "250 OK"

    async def start(self) -> str:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: SMTP(self, loop=loop), host="127.0.0.1", port=0
        )
        self.port = self.server.sockets[0].getsockname()[1]
        return f"smtp://127.0.0.1:{self.port}"

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@dataclass
class Mailer:
    """A customer's mail client: real `smtplib` against the app's embedded SMTP server."""

    client: TestClient[Any, Any]
    relay: CatchingRelay
    sent: list[EmailMessage] = field(default_factory=list)

    @property
    def app(self) -> web.Application:
        return self.client.app  # type: ignore[no-any-return]

    @property
    def store(self) -> Store:
        return self.app[STORE]

    @property
    def port(self) -> int:
        port = self.app[EMAIL].port
        assert port is not None
        return port

    def compose(
        self, sender: str, text: str, *, subject: str = "Help",
        reply_to: EmailMessage | None = None, to: str = SUPPORT,
        headers: dict[str, str] | None = None,
    ) -> EmailMessage:  # fmt: skip
        msg = EmailMessage()
        msg["From"] = sender
        msg["To"] = to
        msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].rstrip(">"))
        if reply_to is not None:
            msg["Subject"] = f"Re: {reply_to['Subject']}".replace("Re: Re: ", "Re: ")
            msg["In-Reply-To"] = reply_to["Message-ID"]
            refs = str(reply_to.get("References", "")).split()
            msg["References"] = " ".join([*refs, str(reply_to["Message-ID"])])
        else:
            msg["Subject"] = subject
        for name, value in (headers or {}).items():
            msg[name] = value
        msg.set_content(text)
        return msg

    async def send(
        self, msg: EmailMessage | bytes, *, mail_from: str | None = None,
        rcpt: str = SUPPORT,
    ) -> dict[str, tuple[int, bytes]]:  # fmt: skip
        """Send with smtplib (in a thread: the server runs on this loop), then wait for
        the answer. smtplib raises on a refusal."""
        if isinstance(msg, EmailMessage):
            self.sent.append(msg)
            raw = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))  # as on the wire
            envelope = mail_from if mail_from is not None else str(msg["From"])
        else:
            raw, envelope = msg, mail_from or "someone@example.com"

        def deliver() -> dict[str, tuple[int, bytes]]:
            with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as smtp:
                return smtp.sendmail(envelope, [rcpt], raw)

        refused = await asyncio.to_thread(deliver)
        await self.app[DISPATCHER].drain()
        return refused


__all__ = ["SUPPORT", "CatchingRelay", "Mailer"]
