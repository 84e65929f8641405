"""The embedded SMTP server (aiosmtpd) that receives mail for the support address.

It runs on the gateway's own event loop. `RCPT TO` must be the support address (or
`support+tag@`); a mail over `GATEWAY_EMAIL_MAX_BYTES` is refused with 552 by
aiosmtpd; `250` is answered only after the mail is committed to the store
(`Dispatcher.handle`), so a crash before that makes the sending server retry.
With `GATEWAY_EMAIL_TLS_CERT` and `GATEWAY_EMAIL_TLS_KEY` it offers STARTTLS
(aiosmtpd's `tls_context`), and with `GATEWAY_EMAIL_REQUIRE_STARTTLS` it refuses
(530) mail from a client that did not start TLS first.

Answers. A temporary failure (451) only when trying again can help (the store is
unreachable); a mail that would fail the same way on every try is accepted when it can
be stored (a body too deep or too slow to read is stored from its headers) and refused
for good (5xx) when it cannot (no usable or an impossibly long From address). Lines
of DATA may be as long as the whole mail: RFC 5321's 1,000 characters is a limit real
clients do not keep (Outlook sends HTML in lines of thousands).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from channels.email.channel import Accepted, EmailChannel
from gateway.dispatch import Dispatcher
from gateway.errors import ConfigError, StoreError

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
    except (StoreError, OSError, TimeoutError):  # may well work on the next try
        log.exception("mail from %s could not be stored", mail_from)
        return Accepted.FAILED
    except Exception:  # a fault that this mail would meet again on every try
        log.exception("mail from %s refused: it cannot be read", mail_from)
        return Accepted.UNREADABLE
    if not ingested.duplicate:
        channel.remember(ingested.conversation.id, mail, ingested.message)
    return Accepted.OK


def server_tls(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """The TLS context STARTTLS uses, from GATEWAY_EMAIL_TLS_CERT and GATEWAY_EMAIL_TLS_KEY
    (None when unset); ConfigError naming the setting when a file is missing, unreadable
    or not a matching PEM certificate and key."""
    if cert is None or key is None:
        return None
    for name, path in (("GATEWAY_EMAIL_TLS_CERT", cert), ("GATEWAY_EMAIL_TLS_KEY", key)):
        try:
            path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{name}: cannot read {path}: {exc.strerror or exc}") from exc
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise ConfigError(
            f"GATEWAY_EMAIL_TLS_CERT and GATEWAY_EMAIL_TLS_KEY: {cert} and {key} are not a PEM"
            f" certificate and its private key ({exc.reason or exc})"
        ) from exc
    return context


class GatewaySMTP(SMTP):
    """aiosmtpd's server with DATA lines as long as `line_limit` (the mail size limit)."""

    def __init__(self, *args: Any, line_limit: int, **kwargs: Any) -> None:
        # aiosmtpd reads its class attribute when it builds its stream reader.
        self.line_length_limit = max(1001, line_limit)
        super().__init__(*args, **kwargs)


async def start_server(
    handler: InboundHandler, host: str, port: int, *, max_bytes: int, hostname: str,
    tls: ssl.SSLContext | None = None, require_tls: bool = False,
) -> asyncio.Server:  # fmt: skip
    """Listen for SMTP on `host:port` on the running loop (STARTTLS offered with `tls`)."""
    loop = asyncio.get_running_loop()

    def factory() -> Any:
        return GatewaySMTP(
            handler,
            line_limit=max_bytes,
            data_size_limit=max_bytes,
            enable_SMTPUTF8=True,
            hostname=hostname,
            ident="support-gateway",
            loop=loop,
            tls_context=tls,
            require_starttls=require_tls,
        )

    return await loop.create_server(factory, host=host, port=port)


__all__ = ["GatewaySMTP", "InboundHandler", "accept_mail", "server_tls", "start_server"]
