"""Database URLs: which backend `GATEWAY_DATABASE_URL` names, and its forms for each
driver (asyncpg for the store, psycopg for Alembic's migrations)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from gateway.errors import ConfigError
from gateway.redaction import redact_url

_SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg", "postgresql+psycopg")


def is_postgres(url: str) -> bool:
    return url.split("://", 1)[0].lower() in _SCHEMES


@dataclass(frozen=True, slots=True)
class PgUrl:
    """A PostgreSQL URL in the forms each driver takes."""

    dsn: str  # postgresql://... (asyncpg)
    sqlalchemy: str  # postgresql+psycopg://... (Alembic, through SQLAlchemy)
    redacted: str  # for messages: the password hidden

    @classmethod
    def parse(cls, url: str) -> PgUrl:
        parts = urlsplit(url)
        if parts.scheme.lower() not in _SCHEMES or not parts.path.strip("/"):
            raise ConfigError(
                "GATEWAY_DATABASE_URL: expected postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
            )
        dsn = urlunsplit(("postgresql", *parts[1:]))
        return cls(dsn=dsn, sqlalchemy=urlunsplit(("postgresql+psycopg", *parts[1:])),
                   redacted=redact_url(dsn))  # fmt: skip


__all__ = ["PgUrl", "is_postgres"]
