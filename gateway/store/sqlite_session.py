"""Finding (or creating) a customer and their conversation on SQLite, on the
store's writer thread.

The writer thread is the only writer of the file, so the caches here (identity
-> customer, customers, open conversations, conversations) are always current
and the hot path of a message is a couple of inserts rather than a round of
lookups. Everything here runs inside the writer's transaction; a rollback drops
the caches (`drop`), and they reload on the next use.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

from gateway.errors import NotFoundError
from gateway.models import ChannelKind, ConversationState, Customer, InboundMessage
from gateway.protocols import OpenedSession
from gateway.store.merge import merge_customers
from gateway.store.rows import (
    conversation_from_row,
    customer_from_row,
    dumps,
    now_ms,
)
from gateway.store.rules import raised_verification
from gateway.store.sqlite_reads import customer_row

log = logging.getLogger(__name__)

_CACHE_MAX = 100_000


class Sessions:
    """Customer and conversation resolution for `SqliteStore`, with the writer's
    caches. Touched only from the writer thread."""

    def __init__(self) -> None:
        self._ident: dict[str, int] = {}
        self._cust: dict[int, dict[str, Any]] = {}
        self._open: dict[int, dict[str, Any] | None] = {}
        self._conv: dict[int, dict[str, Any]] = {}

    # --------------------------------------------------------------- caches

    def drop(self) -> None:
        """Forget everything (after a rollback, or when rows moved owner)."""
        self._ident.clear()
        self._cust.clear()
        self._open.clear()
        self._conv.clear()

    def trim(self) -> None:
        """Bound the caches' memory: past the limit, start again empty."""
        if len(self._cust) > _CACHE_MAX or len(self._conv) > _CACHE_MAX:
            self.drop()

    def linked(self, identity_key: str, customer_id: int, moved_from: int | None) -> None:
        """`identity_key` now belongs to `customer_id` (taken from `moved_from`)."""
        self._ident[identity_key] = customer_id
        self._cust.pop(customer_id, None)
        if moved_from is not None:
            self._cust.pop(moved_from, None)

    def closed(self, customer_id: int) -> None:
        """The customer's open conversation was closed."""
        self._open[customer_id] = None

    def open_session(self, conn: sqlite3.Connection, probe: InboundMessage) -> OpenedSession:
        """See `Store.open_session`: the customer and their open (or a new) conversation."""
        self.trim()
        ts = now_ms()
        cust, created = self.resolve_customer(conn, probe, ts)
        conv = self.open_conversation(conn, cust["id"])
        started = conv is None
        if conv is None:
            conv = self.start_conversation(conn, cust["id"], probe.channel, ts)
        self.move_to_channel(conn, conv, probe.channel, ts)
        return OpenedSession(
            customer=self.snapshot(cust),
            conversation=conversation_from_row(conv),
            created_customer=created,
            created_conversation=started,
        )

    # ------------------------------------------------------------- customer

    def customer(self, conn: sqlite3.Connection, customer_id: int) -> dict[str, Any]:
        """The customer's row, with `identities` (cached; the caller may update it)."""
        cust = self._cust.get(customer_id)
        if cust is None:
            self._cust[customer_id] = cust = customer_row(conn, customer_id)
        return cust

    @staticmethod
    def snapshot(cust: dict[str, Any]) -> Customer:
        """The record of a cached customer row."""
        return customer_from_row(cust, cust["identities"])

    @staticmethod
    def next_seq(conn: sqlite3.Connection, cust: dict[str, Any]) -> int:
        """Number the customer's next message."""
        seq = int(cust["last_seq"]) + 1
        conn.execute("UPDATE customers SET last_seq=? WHERE id=?", (seq, cust["id"]))
        cust["last_seq"] = seq
        return seq

    def resolve_customer(
        self, conn: sqlite3.Connection, msg: InboundMessage, ts: int
    ) -> tuple[dict[str, Any], bool]:
        """The customer `msg`'s identity belongs to, created if new: (row, created)."""
        ident = msg.identity
        key = ident.key
        customer_id = self._ident.get(key)
        if customer_id is None:
            row = conn.execute(
                "SELECT customer_id, verified FROM identities WHERE kind=? AND value=?",
                (ident.kind.value, ident.value),
            ).fetchone()
            if row is not None:
                customer_id = row["customer_id"]
        if customer_id is not None:
            self._ident[key] = customer_id
            cust = self._link_account(conn, self.customer(conn, customer_id), msg, ts)
            self._refresh(conn, cust, msg)
            return cust, False
        created = False
        if msg.account_ref is not None:
            row = conn.execute(
                "SELECT id FROM customers WHERE account_ref=? ORDER BY id LIMIT 1",
                (msg.account_ref,),
            ).fetchone()
            customer_id = row["id"] if row else None
        if customer_id is None:
            cur = conn.execute(
                "INSERT INTO customers (display_name, account_ref, last_seq, created_at)"
                " VALUES (?,?,0,?)",
                (msg.display_name, msg.account_ref, ts),
            )
            customer_id = int(cur.lastrowid or 0)
            created = True
        conn.execute(
            "INSERT INTO identities (customer_id, kind, value, verified, created_at)"
            " VALUES (?,?,?,?,?)",
            (customer_id, ident.kind.value, ident.value, ident.verified.value, ts),
        )
        self._cust.pop(customer_id, None)
        self._ident[key] = customer_id
        return self.customer(conn, customer_id), created

    def _link_account(
        self, conn: sqlite3.Connection, cust: dict[str, Any], msg: InboundMessage, ts: int
    ) -> dict[str, Any]:
        """A known identity now linked to an account that already has a customer:
        the two records are one person, merged into the account's (see merge.py)."""
        ref = msg.account_ref
        if ref is None or cust["account_ref"] is not None:
            if ref is not None and cust["account_ref"] != ref:
                # Never re-link on a lookup: a number may have moved to another account.
                log.warning("customer %s is linked to another account than the one %s names",
                            cust["id"], msg.identity.key)  # fmt: skip
            return cust
        row = conn.execute(
            "SELECT id FROM customers WHERE account_ref=? AND id != ? ORDER BY id LIMIT 1",
            (ref, cust["id"]),
        ).fetchone()
        if row is None:
            return cust  # _refresh links this customer itself
        survivor = int(row["id"])
        reason = {"account_ref": ref, "identity": msg.identity.key}
        moved = merge_customers(conn, survivor, cust["id"], reason=reason, ts=ts)
        log.info("merged customer %s into %s (account %s, %d messages)",
                 cust["id"], survivor, ref, moved)  # fmt: skip
        self.drop()  # rows moved owner; the caches reload inside this transaction
        return self.customer(conn, survivor)

    @staticmethod
    def _refresh(conn: sqlite3.Connection, cust: dict[str, Any], msg: InboundMessage) -> None:
        """Record stronger verification, a first name or an account link."""
        ident = msg.identity
        known = next((i for i in cust["identities"] if i.key == ident.key), None)
        if known is not None and raised_verification(known.verified, ident.verified):
            conn.execute(
                "UPDATE identities SET verified=? WHERE kind=? AND value=?",
                (ident.verified.value, ident.kind.value, ident.value),
            )
            cust["identities"] = [ident if i.key == ident.key else i for i in cust["identities"]]
        if msg.display_name and not cust["display_name"]:
            conn.execute(
                "UPDATE customers SET display_name=? WHERE id=?", (msg.display_name, cust["id"])
            )
            cust["display_name"] = msg.display_name
        if msg.account_ref and not cust["account_ref"]:
            conn.execute(
                "UPDATE customers SET account_ref=? WHERE id=?", (msg.account_ref, cust["id"])
            )
            cust["account_ref"] = msg.account_ref

    # --------------------------------------------------------- conversation

    def conversation(self, conn: sqlite3.Connection, conversation_id: int) -> dict[str, Any]:
        """The conversation's row (cached; the caller may update it)."""
        conv = self._conv.get(conversation_id)
        if conv is None:
            conv = conn.execute(
                "SELECT * FROM conversations WHERE id=?", (conversation_id,)
            ).fetchone()
            if conv is None:
                raise NotFoundError(f"no conversation {conversation_id}")
            self._conv[conversation_id] = conv
        return conv

    def open_conversation(
        self, conn: sqlite3.Connection, customer_id: int
    ) -> dict[str, Any] | None:
        """The customer's conversation that is not closed, if any."""
        if customer_id in self._open:
            return self._open[customer_id]
        row: dict[str, Any] | None = conn.execute(
            "SELECT * FROM conversations WHERE customer_id=? AND state != 'closed'"
            " ORDER BY id DESC LIMIT 1",
            (customer_id,),
        ).fetchone()
        self._open[customer_id] = row
        if row is not None:
            self._conv[row["id"]] = row
        return row

    def conversation_for(
        self, conn: sqlite3.Connection, customer_id: int, msg: InboundMessage, ts: int
    ) -> dict[str, Any]:
        """The conversation `msg` joins: its target, the open one, or a new one."""
        conv = self._target_conversation(conn, customer_id, msg)
        if conv is None and not msg.new_conversation:
            conv = self.open_conversation(conn, customer_id)
        if conv is None:
            conv = self.start_conversation(conn, customer_id, msg.channel, ts)
        return conv

    def _target_conversation(
        self, conn: sqlite3.Connection, customer_id: int, msg: InboundMessage
    ) -> dict[str, Any] | None:
        """The conversation `msg` asks to continue, if it is this customer's and open."""
        if msg.conversation_id is None:
            return None
        try:
            conv = self.conversation(conn, msg.conversation_id)
        except NotFoundError:
            return None
        if conv["customer_id"] != customer_id or conv["state"] == ConversationState.CLOSED.value:
            return None
        return conv

    def start_conversation(
        self, conn: sqlite3.Connection, customer_id: int, channel: ChannelKind, ts: int
    ) -> dict[str, Any]:
        """A new open conversation for the customer, on `channel`."""
        row: dict[str, Any] = {
            "customer_id": customer_id,
            "state": ConversationState.BOT.value,
            "channel": channel.value,
            "channels": dumps([channel.value]),
            "queue": None,
            "brief": None,
            "agent_state": "{}",
            "version": 0,
            "created_at": ts,
            "updated_at": ts,
            "closed_at": None,
        }
        cur = conn.execute(
            f"INSERT INTO conversations ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
            tuple(row.values()),
        )
        row["id"] = int(cur.lastrowid or 0)
        self._conv[row["id"]] = row
        self._open[customer_id] = row
        insert_event(conn, row["id"], customer_id, "conversation.started",
                     {"channel": channel.value}, ts)  # fmt: skip
        return row

    @staticmethod
    def move_to_channel(
        conn: sqlite3.Connection, conv: dict[str, Any], channel: ChannelKind, ts: int
    ) -> None:
        """The customer is on `channel` now: replies go there."""
        if conv["channel"] == channel.value:
            return
        channels = json.loads(conv["channels"])
        if channel.value not in channels:
            channels.append(channel.value)
        conn.execute(
            "UPDATE conversations SET channel=?, channels=?, updated_at=? WHERE id=?",
            (channel.value, dumps(channels), ts, conv["id"]),
        )
        conv.update(channel=channel.value, channels=dumps(channels), updated_at=ts)


def insert_event(
    conn: sqlite3.Connection, conversation_id: int, customer_id: int,
    kind: str, data: dict[str, Any], ts: int,
) -> None:  # fmt: skip
    """Append one event to the conversation's log."""
    conn.execute(
        "INSERT INTO events (conversation_id, customer_id, kind, data, created_at)"
        " VALUES (?,?,?,?,?)",
        (conversation_id, customer_id, kind, dumps(data), ts),
    )
