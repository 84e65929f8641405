"""What the email channel keeps on the app (under `EMAIL`)."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass

from aiohttp import web

from channels.email.channel import EmailChannel
from gateway.settings import Settings


@dataclass
class EmailState:
    """Built by `setup_email`; the SMTP server starts (and `port` is known) at start-up."""

    settings: Settings
    channel: EmailChannel
    server: asyncio.Server | None = None
    port: int | None = None
    poller: asyncio.Task[None] | None = None
    tls: ssl.SSLContext | None = None  # STARTTLS for the SMTP server (GATEWAY_EMAIL_TLS_*)


EMAIL = web.AppKey("email", EmailState)

__all__ = ["EMAIL", "EmailState"]
