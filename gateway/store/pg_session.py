"""Finding (or creating) a customer and their conversation on PostgreSQL, inside
the caller's transaction. Every path locks the customer row first, then the
conversation's: one order, so concurrent nodes queue instead of deadlocking."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from gateway.errors import NotFoundError
from gateway.models import ChannelKind, ConversationState, Customer, InboundMessage, Verification
from gateway.protocols import OpenedSession
from gateway.store.pg_linking import IdentityMoved, lock_customers, merge_customers
from gateway.store.rows import (
    conversation_from_row,
    customer_from_row,
    dumps,
    identity_from_row,
    now_ms,
)
from gateway.store.rules import raised_verification

if TYPE_CHECKING:
    from gateway.store.postgres import PostgresStore

log = logging.getLogger(__name__)

Conn = Any  # asyncpg.Connection (asyncpg ships no type hints)
Row = dict[str, Any]


class Sessions:
    """Customer and conversation resolution for `PostgresStore`."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store

    async def open_session(self, conn: Conn, probe: InboundMessage) -> OpenedSession:
        ts = now_ms()
        cust, created = await self.resolve_customer(conn, probe, ts)
        conv = await self.open_conversation(conn, cust)
        started = conv is None
        if conv is None:
            conv = await self.start_conversation(conn, cust, probe.channel, ts)
        await self.move_to_channel(conn, conv, probe.channel, ts)
        return OpenedSession(
            customer=await self.customer(conn, cust),
            conversation=conversation_from_row(conv),
            created_customer=created,
            created_conversation=started,
        )

    # ------------------------------------------------------------- customer

    async def customer(self, conn: Conn, customer_id: int) -> Customer:
        row = await conn.fetchrow("SELECT * FROM customers WHERE id=$1", customer_id)
        if row is None:
            raise NotFoundError(f"no customer {customer_id}")
        idents = await conn.fetch(
            "SELECT kind, value, verified FROM identities WHERE customer_id=$1 ORDER BY id",
            customer_id,
        )
        return customer_from_row(row, [identity_from_row(r) for r in idents])

    async def resolve_customer(self, conn: Conn, msg: InboundMessage, ts: int) -> tuple[int, bool]:
        """The (locked) customer `msg` comes from, created on first contact; linked to
        the message's account (merging records that turn out to be one person)."""
        ident = msg.identity
        owner = await conn.fetchval(
            "SELECT customer_id FROM identities WHERE kind=$1 AND value=$2",
            ident.kind.value, ident.value,
        )  # fmt: skip
        if owner is not None:
            locked = await lock_customers(conn, int(owner))
            row = await conn.fetchrow(
                "SELECT customer_id, verified FROM identities WHERE kind=$1 AND value=$2",
                ident.kind.value, ident.value,
            )  # fmt: skip
            if int(owner) not in locked or row is None or row["customer_id"] != owner:
                raise IdentityMoved  # merged or moved before the lock: run it again
            cust = await self._link_account(conn, locked[int(owner)], msg, ts)
            await self.refresh(conn, cust, msg, Verification(row["verified"]))
            return cust, False
        customer_id = None
        created = False
        if msg.account_ref is not None:
            customer_id = await conn.fetchval(
                "SELECT id FROM customers WHERE account_ref=$1 ORDER BY id LIMIT 1",
                msg.account_ref,
            )
        if customer_id is None:
            customer_id = await conn.fetchval(
                "INSERT INTO customers (display_name, account_ref, last_seq, created_at)"
                " VALUES ($1,$2,0,$3) RETURNING id",
                msg.display_name, msg.account_ref, ts,
            )  # fmt: skip
            created = True
        elif not await lock_customers(conn, int(customer_id)):
            raise IdentityMoved  # the account's record was merged away meanwhile
        # A concurrent first contact of the same identity makes this a unique violation:
        # the store runs the transaction again and finds the identity then.
        await conn.execute(
            "INSERT INTO identities (customer_id, kind, value, verified, created_at)"
            " VALUES ($1,$2,$3,$4,$5)",
            customer_id, ident.kind.value, ident.value, ident.verified.value, ts,
        )  # fmt: skip
        return int(customer_id), created

    async def _link_account(self, conn: Conn, cust: Any, msg: InboundMessage, ts: int) -> int:
        """A known identity now linked to an account that already has a customer:
        the two records are one person, merged into the account's (see merge.py)."""
        ref = msg.account_ref
        if ref is None or cust["account_ref"] is not None:
            if ref is not None and cust["account_ref"] != ref:
                log.warning("customer %s is linked to another account than the one %s names",
                            cust["id"], msg.identity.key)  # fmt: skip
            return int(cust["id"])
        survivor = await conn.fetchval(
            "SELECT id FROM customers WHERE account_ref=$1 AND id != $2 ORDER BY id LIMIT 1",
            ref, cust["id"],
        )  # fmt: skip
        if survivor is None:
            return int(cust["id"])
        if int(survivor) not in await lock_customers(conn, int(survivor)):
            raise IdentityMoved
        reason = {"account_ref": ref, "identity": msg.identity.key}
        moved = await merge_customers(conn, int(survivor), int(cust["id"]), reason=reason, ts=ts)
        log.info("merged customer %s into %s (account %s, %d messages)",
                 cust["id"], survivor, ref, moved)  # fmt: skip
        return int(survivor)

    async def refresh(
        self, conn: Conn, customer_id: int, msg: InboundMessage, known: Verification
    ) -> None:
        """Record stronger verification (whichever record holds the identity now, also
        after `_link_account` merged it), a first name or an account link."""
        ident = msg.identity
        if raised_verification(known, ident.verified):
            await conn.execute(
                "UPDATE identities SET verified=$3 WHERE kind=$1 AND value=$2",
                ident.kind.value, ident.value, ident.verified.value,
            )  # fmt: skip
        if msg.display_name or msg.account_ref:
            await conn.execute(
                "UPDATE customers SET"
                " display_name = CASE WHEN COALESCE(display_name, '') = '' AND $2::text <> ''"
                "   THEN $2 ELSE display_name END,"
                " account_ref = CASE WHEN COALESCE(account_ref, '') = '' AND $3::text <> ''"
                "   THEN $3 ELSE account_ref END"
                " WHERE id=$1",
                customer_id, msg.display_name or "", msg.account_ref or "",
            )  # fmt: skip

    # --------------------------------------------------------- conversation

    async def conversation_for(self, conn: Conn, cust: int, msg: InboundMessage, ts: int) -> Row:
        """The conversation `msg` joins: its target, the open one, or a new one; moved
        to the message's channel."""
        conv: Row | None = None
        if msg.conversation_id is not None:
            row = await conn.fetchrow("SELECT * FROM conversations WHERE id=$1",
                                      msg.conversation_id)  # fmt: skip
            if (
                row is not None
                and row["customer_id"] == cust
                and row["state"] != ConversationState.CLOSED.value
            ):
                conv = dict(row)
        if conv is None and not msg.new_conversation:
            conv = await self.open_conversation(conn, cust)
        if conv is None:
            conv = await self.start_conversation(conn, cust, msg.channel, ts)
        await self.move_to_channel(conn, conv, msg.channel, ts)
        return conv

    async def open_conversation(self, conn: Conn, customer_id: int) -> Row | None:
        row = await conn.fetchrow(
            "SELECT * FROM conversations WHERE customer_id=$1 AND state != 'closed'"
            " ORDER BY id DESC LIMIT 1",
            customer_id,
        )
        return None if row is None else dict(row)

    async def start_conversation(
        self, conn: Conn, customer_id: int, channel: ChannelKind, ts: int
    ) -> Row:
        row = await conn.fetchrow(
            "INSERT INTO conversations (customer_id, state, channel, channels, agent_state,"
            " version, created_at, updated_at) VALUES ($1,$2,$3,$4,'{}',0,$5,$5) RETURNING *",
            customer_id, ConversationState.BOT.value, channel.value, dumps([channel.value]), ts,
        )  # fmt: skip
        await self.event(conn, row["id"], customer_id, "conversation.started",
                         {"channel": channel.value}, ts)  # fmt: skip
        return dict(row)

    async def move_to_channel(self, conn: Conn, conv: Row, channel: ChannelKind, ts: int) -> None:
        """The customer is on `channel` now: replies go there."""
        if conv["channel"] == channel.value:
            return
        channels = json.loads(conv["channels"])
        if channel.value not in channels:
            channels.append(channel.value)
        await conn.execute(
            "UPDATE conversations SET channel=$2, channels=$3, updated_at=$4 WHERE id=$1",
            conv["id"], channel.value, dumps(channels), ts,
        )  # fmt: skip
        conv.update(channel=channel.value, channels=dumps(channels), updated_at=ts)

    async def event(
        self, conn: Conn, conversation_id: int, customer_id: int, kind: str,
        data: dict[str, Any], ts: int,
    ) -> None:  # fmt: skip
        await conn.execute(
            "INSERT INTO events (conversation_id, customer_id, kind, data, created_at)"
            " VALUES ($1,$2,$3,$4,$5)",
            conversation_id, customer_id, kind, dumps(data), ts,
        )  # fmt: skip


__all__ = ["Conn", "Sessions"]
