"""`DeskOrgStore` on PostgreSQL: labels, teams, queue SLA targets (a part of
`PostgresDeskStore`; the same SQL as SQLite, `$n` marks)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from gateway.desk.org_store import (
    LABEL_ADDED,
    LABEL_REMOVED,
    Label,
    QueueTargets,
    ReplyTimes,
    Team,
)
from gateway.errors import ConflictError, NotFoundError
from gateway.store import desk_org_sql as q
from gateway.store.desk_sql import numbered as n
from gateway.store.postgres import PostgresStore
from gateway.store.rows import now_ms

Conn = Any  # asyncpg.Connection (asyncpg ships no type hints)


async def _unique(conn: Conn, sql: str, args: tuple[object, ...], what: str) -> Any:
    try:
        async with conn.transaction():  # a savepoint: the unique key answers
            return await conn.fetchval(n(sql), *args)
    except asyncpg.exceptions.UniqueViolationError as exc:
        raise ConflictError(f"{what} exists") from exc


def _one(status: object) -> bool:
    return str(status).endswith(" 1")


class PostgresDeskOrg:
    _store: PostgresStore

    # ------------------------------------------------------------- labels
    async def labels(self) -> list[Label]:
        async def op(conn: Conn) -> list[Label]:
            return [q.label_from_row(r) for r in await conn.fetch(q.LABELS)]

        return await self._store.read(op)

    async def add_label(self, name: str, colour: str | None) -> Label:
        async def op(conn: Conn) -> Label:
            sql = q.ADD_LABEL + " RETURNING id"
            new_id = await _unique(conn, sql, (name, colour, now_ms()), f"a label {name!r}")
            return Label(id=new_id, name=name, colour=colour)

        return await self._store.write(op)

    async def update_label(self, label_id: int, name: str, colour: str | None) -> Label:
        async def op(conn: Conn) -> Label:
            if await conn.fetchrow(n(q.LABEL), label_id) is None:
                raise NotFoundError(f"no label {label_id}")
            await _unique(conn, q.UPDATE_LABEL, (name, colour, label_id), f"a label {name!r}")
            return Label(id=label_id, name=name, colour=colour)

        return await self._store.write(op)

    async def delete_label(self, label_id: int) -> bool:
        async def op(conn: Conn) -> bool:
            await conn.execute(n(q.UNLABEL_ALL), label_id)
            return _one(await conn.execute(n(q.DELETE_LABEL), label_id))

        return await self._store.write(op)

    async def conversation_labels(self, conversation_id: int) -> list[Label]:
        async def op(conn: Conn) -> list[Label]:
            rows = await conn.fetch(n(q.CONVERSATION_LABELS), conversation_id)
            return [q.label_from_row(r) for r in rows]

        return await self._store.read(op)

    async def labels_of(self, conversation_ids: Sequence[int]) -> dict[int, list[str]]:
        ids = list(conversation_ids)
        if not ids:
            return {}
        sql = (
            "SELECT cl.conversation_id, l.name FROM conversation_labels cl JOIN labels l"
            " ON l.id = cl.label_id WHERE cl.conversation_id = ANY($1::int[]) ORDER BY l.name"
        )

        async def op(conn: Conn) -> dict[int, list[str]]:
            out: dict[int, list[str]] = {}
            for r in await conn.fetch(sql, ids):
                out.setdefault(r["conversation_id"], []).append(r["name"])
            return out

        return await self._store.read(op)

    async def label_conversation(
        self, conversation_id: int, label_id: int, rep_id: int, *, on: bool
    ) -> bool:
        async def op(conn: Conn) -> bool:
            row = await conn.fetchrow(n(q.LABEL), label_id)
            if row is None:
                raise NotFoundError(f"no label {label_id}")
            if await conn.fetchval(n(q.CONVERSATION_EXISTS), conversation_id) is None:
                raise NotFoundError(f"no conversation {conversation_id}")
            now = now_ms()
            if on:
                sql = n(q.LABEL_ON) + " ON CONFLICT DO NOTHING"
                changed = _one(await conn.execute(sql, conversation_id, label_id, rep_id, now))
            else:
                changed = _one(await conn.execute(n(q.LABEL_OFF), conversation_id, label_id))
            if changed:
                kind = LABEL_ADDED if on else LABEL_REMOVED
                data = q.event_data(q.label_from_row(row), rep_id)
                await conn.execute(n(q.LABEL_EVENT), kind, data, now, conversation_id)
            return changed

        return await self._store.write(op)

    # -------------------------------------------------------------- teams
    async def teams(self) -> list[Team]:
        async def op(conn: Conn) -> list[Team]:
            return q.teams_from_rows(await conn.fetch(q.TEAMS), await conn.fetch(q.MEMBERS))

        return await self._store.read(op)

    async def add_team(self, name: str) -> Team:
        async def op(conn: Conn) -> Team:
            sql = q.ADD_TEAM + " RETURNING id"
            new_id = await _unique(conn, sql, (name, now_ms()), f"a team {name!r}")
            return Team(id=new_id, name=name)

        return await self._store.write(op)

    async def rename_team(self, team_id: int, name: str) -> Team:
        async def op(conn: Conn) -> Team:
            if await conn.fetchrow(n(q.TEAM), team_id) is None:
                raise NotFoundError(f"no team {team_id}")
            await _unique(conn, q.RENAME_TEAM, (name, team_id), f"a team {name!r}")
            members = await conn.fetch(q.MEMBERS)
            return q.teams_from_rows([{"id": team_id, "name": name}], members)[0]

        return await self._store.write(op)

    async def delete_team(self, team_id: int) -> bool:
        async def op(conn: Conn) -> bool:
            await conn.execute(n(q.EMPTY_TEAM), team_id)
            return _one(await conn.execute(n(q.DELETE_TEAM), team_id))

        return await self._store.write(op)

    async def set_team(self, rep_id: int, team_id: int | None) -> None:
        async def op(conn: Conn) -> None:
            if await conn.fetchval(n(q.REP_EXISTS), rep_id) is None:
                raise NotFoundError(f"no rep {rep_id}")
            if team_id is not None and await conn.fetchrow(n(q.TEAM), team_id) is None:
                raise NotFoundError(f"no team {team_id}")
            await conn.execute(n(q.LEAVE_TEAM), rep_id)
            if team_id is not None:
                await conn.execute(n(q.JOIN_TEAM), rep_id, team_id)

        await self._store.write(op)

    async def team_rep_ids(self, team_name: str) -> list[int]:
        async def op(conn: Conn) -> list[int]:
            return [r["rep_id"] for r in await conn.fetch(n(q.TEAM_REP_IDS), team_name)]

        return await self._store.read(op)

    # ---------------------------------------------------------- queue SLA
    async def queue_targets(self) -> list[QueueTargets]:
        async def op(conn: Conn) -> list[QueueTargets]:
            return [q.targets_from_row(r) for r in await conn.fetch(q.QUEUE_TARGETS)]

        return await self._store.read(op)

    async def set_queue_targets(self, targets: QueueTargets, rep_id: int) -> None:
        async def op(conn: Conn) -> None:
            args = q.targets_args(targets, rep_id, now_ms())
            await conn.execute(n(q.SET_QUEUE_TARGETS), *args)

        await self._store.write(op)

    async def clear_queue_targets(self, queue: str) -> bool:
        async def op(conn: Conn) -> bool:
            return _one(await conn.execute(n(q.CLEAR_QUEUE_TARGETS), queue))

        return await self._store.write(op)

    async def reply_times(self, since: Sequence[tuple[int, int]]) -> dict[int, ReplyTimes]:
        batches = [(n(sql), args) for sql, args in q.reply_times_batches(since)]

        async def op(conn: Conn) -> dict[int, ReplyTimes]:
            out: dict[int, ReplyTimes] = {}
            for sql, args in batches:
                for row in await conn.fetch(sql, *args):
                    out[row["cid"]] = q.reply_times_from_row(row)
            return out

        return await self._store.read(op)


__all__ = ["PostgresDeskOrg"]
