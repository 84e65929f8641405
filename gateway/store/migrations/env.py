"""Alembic environment: runs migrations against the URL set by gateway.store.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from gateway.store.schema import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url, "sqlalchemy.url must be set by gateway.store.migrate"

engine = create_engine(url, poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Several gateway nodes may start at once: one migrates, the others wait
            # here and then find the database at head.
            context.execute("SELECT pg_advisory_xact_lock(7411001)")
        context.run_migrations()
engine.dispose()
