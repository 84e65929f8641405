"""The embedded SMTP server (aiosmtpd) that receives mail for the support address.

It runs on the gateway's own event loop. `RCPT TO` must be the support address (or
`support+tag@`); a mail over `GATEWAY_EMAIL_MAX_BYTES` is refused with 552 by
aiosmtpd; `250` is answered only after the mail is committed to the store
(`Dispatcher.handle`), so a crash before that makes the sending server retry.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from channels.email.channel import Accepted, EmailChannel
from gateway.dispatch import Dispatcher

log = logging.getLogger("gateway.email.smtp")


class InboundHandler:
    """aiosmtpd handler: the support address only; accept after a durable store."""

    def __init__(self, channel: EmailChannel, dispatcher: Dispatcher) -> None:
        self.channel = channel
        self.dispatcher = dispatcher

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        rcpt_options: list[str],
    ) -> str:  # fmt: skip
        if not self.channel.accepts(address):
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if isinstance(raw, str):  # never with decode_data=False; keeps mypy honest
            raw = raw.encode("utf-8", "surrogateescape")
        return await accept_mail(
            self.channel, self.dispatcher, raw, envelope.mail_from, list(envelope.rcpt_tos)
        )


async def accept_mail(
    channel: EmailChannel, dispatcher: Dispatcher, raw: bytes, mail_from: str | None,
    rcpts: list[str],
) -> str:  # fmt: skip
    """Store one received mail (SMTP or IMAP) and schedule its answer; the SMTP reply."""
    try:
        event, mail, answer = await channel.to_event(raw, mail_from, rcpts)
        if event is None or mail is None:
            return answer
        ingested = await dispatcher.handle(event)
    except Exception:
        log.exception("mail from %s could not be stored", mail_from)
        return Accepted.FAILED
    if not ingested.duplicate:
        channel.remember(ingested.conversation.id, mail)
    return Accepted.OK


async def start_server(
    handler: InboundHandler, host: str, port: int, *, max_bytes: int, hostname: str
) -> asyncio.Server:
    """Listen for SMTP on `host:port` on the running loop."""
    loop = asyncio.get_running_loop()

    def factory() -> Any:
        return SMTP(
            handler,
            data_size_limit=max_bytes,
            enable_SMTPUTF8=True,
            hostname=hostname,
            ident="support-gateway",
            loop=loop,
        )

    return await loop.create_server(factory, host=host, port=port)


__all__ = ["InboundHandler", "accept_mail", "start_server"]
