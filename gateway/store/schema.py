"""The database schema, as SQLAlchemy Core metadata.

This is the single source of truth the Alembic migrations are checked against
(tests compare a migrated database with it). Times are integer milliseconds
since the epoch (UTC) so every backend stores and orders them the same way.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

customers = Table(
    "customers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("display_name", String(200)),
    Column("account_ref", String(200), index=True),
    Column("last_seq", BigInteger, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
)

identities = Table(
    "identities",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_id", Integer, ForeignKey("customers.id"), nullable=False, index=True),
    Column("kind", String(20), nullable=False),
    Column("value", String(320), nullable=False),
    Column("verified", String(20), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("opted_out_at", BigInteger),  # STOP on SMS: nothing more is sent until START
    UniqueConstraint("kind", "value"),
)

conversations = Table(
    "conversations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_id", Integer, ForeignKey("customers.id"), nullable=False),
    Column("state", String(20), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("channels", Text, nullable=False),  # JSON list
    Column("queue", String(50)),
    Column("brief", Text),  # JSON HandoffBrief
    Column("agent_state", Text, nullable=False, server_default="{}"),  # JSON
    Column("version", Integer, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("closed_at", BigInteger),
    Index("ix_conversations_customer_state", "customer_id", "state"),
    Index("ix_conversations_state_updated", "state", "updated_at"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("conversation_id", Integer, ForeignKey("conversations.id"), nullable=False, index=True),
    Column("customer_id", Integer, ForeignKey("customers.id"), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("direction", String(10), nullable=False),
    Column("author", String(10), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("text", Text, nullable=False),
    Column("external_id", String(200)),
    Column("confidence", Float),
    Column("start_ms", Integer),
    Column("end_ms", Integer),
    Column("handled", Boolean, nullable=False, server_default="1"),
    Column("meta", Text),  # JSON: attachments, channel headers, ...
    Column("status", String(20)),  # outbound delivery status
    Column("error_code", String(20)),
    Column("created_at", BigInteger, nullable=False),
    # De-duplication of provider retries: the database decides, not a cache.
    UniqueConstraint("channel", "external_id"),
    # Gap-free per-customer numbering that clients resume from.
    UniqueConstraint("customer_id", "seq"),
    Index("ix_messages_unhandled", "handled", "direction"),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("conversation_id", Integer, ForeignKey("conversations.id"), nullable=False, index=True),
    Column("customer_id", Integer, ForeignKey("customers.id"), nullable=False),
    Column("kind", String(60), nullable=False),
    Column("data", Text, nullable=False),  # JSON
    Column("created_at", BigInteger, nullable=False),
    Index("ix_events_customer_kind_time", "customer_id", "kind", "created_at"),
)
