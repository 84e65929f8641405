"""Outbound mail through the configured SMTP relay (aiosmtplib)."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import aiosmtplib

from gateway.settings import Settings


class RelayFailed(Exception):
    """The relay refused the mail or could not be reached; `code` names why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Relay:
    host: str
    port: int
    use_tls: bool  # smtps://: TLS from the first byte
    username: str | None
    password: str | None
    timeout_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Relay | None:
        if settings.email_relay is None:
            return None
        parts = urlsplit(settings.email_relay.get_secret_value())
        tls = parts.scheme == "smtps"
        username = unquote(parts.username) if parts.username else None
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or (465 if tls else 587 if username else 25),
            use_tls=tls,
            username=username,
            password=unquote(parts.password) if parts.password else None,
            timeout_s=settings.email_send_timeout_s,
        )

    async def send(self, message: EmailMessage, *, sender: str, to: str) -> None:
        """Hand `message` to the relay; raise RelayFailed when it is not accepted.
        smtp:// upgrades with STARTTLS when the relay offers it, and insists on it when
        there are credentials (they are never sent in the clear)."""
        start_tls: bool | None = False if self.use_tls else (True if self.username else None)
        try:
            await aiosmtplib.send(
                message,
                sender=sender,
                recipients=[to],
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=self.use_tls,
                start_tls=start_tls,
                timeout=self.timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise RelayFailed("recipient_refused", str(exc)) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise RelayFailed(f"smtp_{exc.code}", exc.message) from exc
        except (OSError, TimeoutError) as exc:  # no connection, or it broke: try later
            raise RelayFailed("unreachable", f"{type(exc).__name__}: {exc}") from exc
        except aiosmtplib.SMTPException as exc:  # the relay cannot do what we need (TLS)
            raise RelayFailed("smtp_error", f"{type(exc).__name__}: {exc}") from exc


__all__ = ["Relay", "RelayFailed"]
