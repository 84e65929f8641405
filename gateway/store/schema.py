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
    # Reports by period (0009): covering, so a period's conversations are read from it.
    Index("ix_conversations_created_at", "created_at", "channel", "state", "queue", "closed_at"),
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
    # The outbox (0005): a reply is in it while `next_attempt_at` is set; a sender
    # claims it until `claimed_until`, so two nodes never send the same reply at once.
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", BigInteger),
    Column("claimed_until", BigInteger),
    Column("created_at", BigInteger, nullable=False),
    # De-duplication of provider retries: the database decides, not a cache.
    UniqueConstraint("channel", "external_id"),
    # Gap-free per-customer numbering that clients resume from.
    UniqueConstraint("customer_id", "seq"),
    Index("ix_messages_unhandled", "handled", "direction"),
    Index("ix_messages_next_attempt_at", "next_attempt_at"),
    # Reports: the first reply by a rep of a range of conversations (0009).
    Index(
        "ix_messages_author_conversation", "author", "direction", "conversation_id", "created_at"
    ),
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
    # Start-up finds conversations by the kind of their events (pending approvals, 0004).
    Index("ix_events_kind_conversation", "kind", "conversation_id"),
)

# --------------------------------------------------------------- routing (0003)

reps = Table(
    "reps",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(100), nullable=False, unique=True),
    Column("display_name", String(200), nullable=False),
    Column("password_hash", String(300), nullable=False),
    Column("skills", Text, nullable=False),  # JSON list
    Column("phone", String(32)),
    Column("max_text", Integer),  # NULL: the configured default
    Column("max_calls", Integer),
    Column("created_at", BigInteger, nullable=False),
    Column("disabled_at", BigInteger),
    Column("role", String(20), nullable=False, server_default="rep"),  # rep|supervisor|admin
)

rep_presence = Table(
    "rep_presence",
    metadata,
    Column("rep_id", Integer, ForeignKey("reps.id"), primary_key=True),
    Column("status", String(20), nullable=False),
    Column("last_busy_at", BigInteger),  # when the rep last took a conversation
    Column("updated_at", BigInteger, nullable=False),
)

queue_entries = Table(
    "queue_entries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("conversation_id", Integer, ForeignKey("conversations.id"), nullable=False),
    Column("queue", String(50), nullable=False),
    Column("kind", String(10), nullable=False),  # text | call
    Column("priority", Integer, nullable=False),
    Column("from_rep_id", Integer, ForeignKey("reps.id")),  # warm transfer: who holds it now
    Column("target_rep_id", Integer, ForeignKey("reps.id")),  # transfer to one rep
    Column("note", Text),
    Column("rep_id", Integer, ForeignKey("reps.id")),  # who took it
    Column("enqueued_at", BigInteger, nullable=False),
    Column("assigned_at", BigInteger),
    Column("ended_at", BigInteger),
    Column("outcome", String(20)),
    Index("ix_queue_entries_open", "ended_at", "assigned_at"),
    Index("ix_queue_entries_conversation_id", "conversation_id"),
    # Reports: the conversations a rep worked (the rep filter, 0013).
    Index("ix_queue_entries_rep_conversation", "rep_id", "conversation_id"),
)

offers = Table(
    "offers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("entry_id", Integer, ForeignKey("queue_entries.id"), nullable=False, index=True),
    Column("rep_id", Integer, ForeignKey("reps.id"), nullable=False),
    Column("status", String(20), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("decided_at", BigInteger),
    Index("ix_offers_status", "status"),
)

dispositions = Table(
    "dispositions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("conversation_id", Integer, ForeignKey("conversations.id"), nullable=False, index=True),
    Column("rep_id", Integer, ForeignKey("reps.id"), nullable=False),
    Column("code", String(60), nullable=False),
    Column("note", Text),
    Column("created_at", BigInteger, nullable=False),
)

ratings = Table(
    "ratings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("conversation_id", Integer, ForeignKey("conversations.id"), nullable=False),
    Column("customer_id", Integer, ForeignKey("customers.id"), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("score", Integer),  # NULL until the customer answers
    Column("requested_at", BigInteger, nullable=False),
    Column("rated_at", BigInteger),
    UniqueConstraint("conversation_id"),
    Index("ix_ratings_customer_id", "customer_id"),
)

console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # sha256 of the cookie's session id
    Column("rep_id", Integer, ForeignKey("reps.id"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger),
)

console_events = Table(
    "console_events",
    metadata,
    Column("seq", Integer, primary_key=True),  # global, what consoles resume from
    Column("rep_id", Integer, ForeignKey("reps.id")),  # NULL: for every rep who may see `queue`
    Column("queue", String(50)),  # NULL with NULL rep: for every rep
    Column("kind", String(40), nullable=False),
    Column("data", Text, nullable=False),  # JSON
    Column("created_at", BigInteger, nullable=False),
    Index("ix_console_events_rep_id_seq", "rep_id", "seq"),
)

# ------------------------------------------------------ email answer limits (0007)

# One row per automatic email answer, kept for the limits' window: the per-sender,
# per-domain and total caps count these, on every node and across restarts.
email_answers = Table(
    "email_answers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sender", String(320), nullable=False),  # the address answered, lower-cased
    Column("domain", String(255), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_email_answers_sender_created_at", "sender", "created_at"),
    Index("ix_email_answers_domain_created_at", "domain", "created_at"),
    Index("ix_email_answers_created_at", "created_at"),
)

# ------------------------------------------------------ console login throttle (0006)

# Wrong console passwords, one row per failure and throttled key (`user:<name>`,
# `addr:<client address>`): the console's login throttle (gateway/routing/throttle.py)
# counts them over its window and deletes rows older than it, so a restart keeps
# every lock and the table holds no more than one window's failures.
login_failures = Table(
    "login_failures",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(200), nullable=False),
    Column("failed_at", BigInteger, nullable=False),
    Index("ix_login_failures_key_failed_at", "key", "failed_at"),
    Index("ix_login_failures_failed_at", "failed_at"),
)

# ------------------------------------------------------------ the desk (0009)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 of the token
    Column("created_by", Integer, ForeignKey("reps.id")),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger),
)

canned_responses = Table(
    "canned_responses",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("text", Text, nullable=False),  # with {first_name}, {order}, {rep_name}
    Column("created_by", Integer, ForeignKey("reps.id")),
    Column("created_at", BigInteger, nullable=False),
)

# ------------------------------------------------------------------ cost (0011)

usage = Table(
    "usage",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("conversation_id", Integer, ForeignKey("conversations.id"), nullable=False),
    # A provider's id for what was measured (an SMS or call sid): its retried callbacks
    # count once. Null for the gateway's own measurements (written with their turn).
    Column("source", String(100), unique=True),
    Column("llm_prompt_tokens", Integer, nullable=False),
    Column("llm_completion_tokens", Integer, nullable=False),
    Column("stt_ms", Integer, nullable=False),  # speech recognised
    Column("tts_ms", Integer, nullable=False),  # speech synthesised
    Column("sms_segments", Integer, nullable=False),
    Column("call_s", Integer, nullable=False),  # Twilio's CallDuration
    Column("created_at", BigInteger, nullable=False),
    # Reports sum a range of conversations' usage (desk_sql.USAGE).
    Index("ix_usage_conversation_id", "conversation_id"),
)

# ------------------------------------------------ labels, teams, queue SLA (0010)

labels = Table(
    "labels",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(50), nullable=False, unique=True),
    Column("colour", String(7)),  # "#rrggbb", or none
    Column("created_at", BigInteger, nullable=False),
)

conversation_labels = Table(
    "conversation_labels",
    metadata,
    Column("conversation_id", Integer, ForeignKey("conversations.id"), primary_key=True),
    Column("label_id", Integer, ForeignKey("labels.id"), primary_key=True),
    Column("added_by", Integer, ForeignKey("reps.id")),
    Column("added_at", BigInteger, nullable=False),
    # Search filters by label: from the label to its conversations.
    Index("ix_conversation_labels_label_id", "label_id", "conversation_id"),
)

teams = Table(
    "teams",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
)

team_members = Table(  # a rep is in one team at most (rep_id is the key)
    "team_members",
    metadata,
    Column("rep_id", Integer, ForeignKey("reps.id"), primary_key=True),
    Column("team_id", Integer, ForeignKey("teams.id"), nullable=False, index=True),
)

queue_sla = Table(  # a queue's SLA targets set in the console (the settings: defaults)
    "queue_sla",
    metadata,
    Column("queue", String(50), primary_key=True),
    Column("first_response_s", Float),
    Column("next_response_s", Float),
    Column("resolution_s", Float),
    Column("updated_by", Integer, ForeignKey("reps.id")),
    Column("updated_at", BigInteger, nullable=False),
)

# ------------------------------------------------------------ report facts (0013)

# What the reports count of each conversation, one row each, kept by triggers on
# conversations, events, messages, ratings and queue_entries in the transaction that
# writes them (migration 0013, which also fills it from the rows already stored): a
# report reads one narrow range instead of five tables. Times in ms since the epoch.
report_facts = Table(
    "report_facts",
    metadata,
    Column(
        "conversation_id",
        Integer,
        ForeignKey("conversations.id"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("channel", String(20), nullable=False),
    Column("state", String(20), nullable=False),
    Column("queue", String(50)),
    Column("created_at", BigInteger, nullable=False),
    Column("closed_at", BigInteger),
    Column("handover_at", BigInteger),  # the first `handover` event
    Column("resolved_at", BigInteger),  # the first `conversation.resolved` event
    Column("resolved_how", String(40)),  # its data's `how`
    Column("rep_reply_at", BigInteger),  # the first reply a rep wrote
    Column("score", Integer),  # the customer's rating
    Column("queue_wait_ms", BigInteger),  # its first wait in a queue until a rep took it
    Column("handle_ms", BigInteger),  # the sum of its finished stretches held by reps
    # The first customer message not yet answered by a rep (while with a rep, after a
    # rep's reply): the next rep reply ends that wait (a `report_responses` row).
    Column("awaiting_since", BigInteger),
    # The reason in the brief of its first handover (the event at handover_at), kept
    # by triggers on events (migration 0018): the reports group it without reading
    # each handover's JSON.
    Column("handover_reason", Text),
    Index("ix_report_facts_created_at", "created_at"),
)

# Each next response: a customer message while a rep held the conversation and after
# a rep had replied (`asked_at`: the first of them), answered by a rep at `replied_at`.
report_responses = Table(
    "report_responses",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("conversation_id", Integer, ForeignKey("conversations.id"), nullable=False, index=True),
    Column("asked_at", BigInteger, nullable=False),
    Column("replied_at", BigInteger, nullable=False),
)

# The messages of each conversation counted by hour since the epoch (created_at //
# 3,600,000 ms) and direction, kept by triggers on messages (insert, delete, and an
# update of conversation, time or direction) in the writing transaction (migration
# 0017, which also fills it): the reports' message figures sum these few rows per
# conversation instead of reading every message.
report_message_hours = Table(
    "report_message_hours",
    metadata,
    Column(
        "conversation_id",
        Integer,
        ForeignKey("conversations.id"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("epoch_hour", BigInteger, primary_key=True, autoincrement=False),
    Column("direction", String(10), primary_key=True),
    Column("n", Integer, nullable=False),
)

# Each rep who took a conversation (a queue entry's rep_id), with how many of its
# entries they took (0: all since deleted or moved), kept by triggers on
# queue_entries (migration 0018, which also fills it): CSAT by rep joins these pairs
# to report_facts' scores instead of every queue entry.
report_rep_conversations = Table(
    "report_rep_conversations",
    metadata,
    Column(
        "conversation_id",
        Integer,
        ForeignKey("conversations.id"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("rep_id", Integer, ForeignKey("reps.id"), primary_key=True, autoincrement=False),
    Column("n", Integer, nullable=False),
)

# ------------------------------------------------------- proactive outreach (0014)

# One row per business event (gateway/outreach): the event's own id is unique, so a
# sender retrying it finds the same outreach. The row is a durable state machine
# (queued -> sending -> sent | failed | deferred | skipped), claimed by one sender at
# a time until `claimed_until`, due again at `due_at` (NULL once final).
outreach = Table(
    "outreach",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("event_id", String(200), nullable=False, unique=True),
    Column("type", String(60), nullable=False),
    Column("payload", Text, nullable=False),  # JSON: the event's customer, data, channel
    Column("customer_id", Integer, ForeignKey("customers.id")),
    Column("conversation_id", Integer, ForeignKey("conversations.id")),
    Column("state", String(20), nullable=False),
    Column("channel", String(20)),  # the channel of the current (or last) attempt
    Column("tried", Text, nullable=False, server_default="[]"),  # JSON: channels that failed
    Column("message_id", Integer, ForeignKey("messages.id")),  # the current attempt's message
    Column("call_sid", String(64)),
    Column("outcome", String(20)),  # a call's: human | machine | no_answer | busy | failed
    Column("error", String(60)),
    Column("due_at", BigInteger),
    Column("claimed_until", BigInteger),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("sent_at", BigInteger),
    # A campaign's recipient (0015): its campaign and row number (the row's outreach id
    # and event id are derived from both, so a restart never makes a second one).
    Column("campaign_id", String(40)),
    Column("campaign_row", Integer),
    Index("ix_outreach_due_at", "due_at"),
    Index("ix_outreach_customer_id_sent_at", "customer_id", "sent_at"),
    Index("ix_outreach_created_at", "created_at"),
    Index("ix_outreach_message_id", "message_id"),
    Index("ix_outreach_campaign_id_campaign_row", "campaign_id", "campaign_row"),
)

# ------------------------------------------------------- outreach campaigns (0015)

# A one-off notice to a list (gateway/outreach/campaigns.py): its recipients are
# outreach rows with its id. `state` is what the people asked for (running, paused,
# cancelled; done once no recipient is left): every node's sender honours it.
outreach_campaigns = Table(
    "outreach_campaigns",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("state", String(20), nullable=False),
    Column("message", Text, nullable=False),  # JSON: the event type or the texts
    Column("rate", Float),  # messages per second for this campaign (NULL: the global one)
    Column("total", Integer, nullable=False),
    Column("created_by", String(100)),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_outreach_campaigns_created_at", "created_at"),
)

# The send rate's next free slot (microseconds since the epoch), per pace: "all" (every
# outreach message, GATEWAY_OUTREACH_SEND_RATE) and "campaign:<id>" (its own rate).
# Every node reserves its slot here, so the rate holds across nodes.
outreach_pace = Table(
    "outreach_pace",
    metadata,
    Column("key", String(60), primary_key=True),
    Column("next_at", BigInteger, nullable=False),
)
