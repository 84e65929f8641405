"""`DeskOrgStore` on SQLite: labels, teams, queue SLA targets (a part of
`SqliteDeskStore`; writes through the store's one writer)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

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
from gateway.store.rows import now_ms
from gateway.store.sqlite import SqliteStore


def _unique(conn: sqlite3.Connection, sql: str, args: tuple[object, ...], what: str) -> int:
    try:
        return int(conn.execute(sql, args).lastrowid or 0)
    except sqlite3.IntegrityError as exc:
        raise ConflictError(f"{what} exists") from exc


class SqliteDeskOrg:
    _store: SqliteStore

    # ------------------------------------------------------------- labels
    async def labels(self) -> list[Label]:
        def op(conn: sqlite3.Connection) -> list[Label]:
            return [q.label_from_row(r) for r in conn.execute(q.LABELS).fetchall()]

        return await self._store.read(op)

    async def add_label(self, name: str, colour: str | None) -> Label:
        def op(conn: sqlite3.Connection) -> Label:
            new_id = _unique(conn, q.ADD_LABEL, (name, colour, now_ms()), f"a label {name!r}")
            return Label(id=new_id, name=name, colour=colour)

        return await self._store.write(op)

    async def update_label(self, label_id: int, name: str, colour: str | None) -> Label:
        def op(conn: sqlite3.Connection) -> Label:
            if conn.execute(q.LABEL, (label_id,)).fetchone() is None:
                raise NotFoundError(f"no label {label_id}")
            _unique(conn, q.UPDATE_LABEL, (name, colour, label_id), f"a label {name!r}")
            return Label(id=label_id, name=name, colour=colour)

        return await self._store.write(op)

    async def delete_label(self, label_id: int) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            conn.execute(q.UNLABEL_ALL, (label_id,))
            return conn.execute(q.DELETE_LABEL, (label_id,)).rowcount == 1

        return await self._store.write(op)

    async def conversation_labels(self, conversation_id: int) -> list[Label]:
        def op(conn: sqlite3.Connection) -> list[Label]:
            rows = conn.execute(q.CONVERSATION_LABELS, (conversation_id,)).fetchall()
            return [q.label_from_row(r) for r in rows]

        return await self._store.read(op)

    async def labels_of(self, conversation_ids: Sequence[int]) -> dict[int, list[str]]:
        ids = list(conversation_ids)
        if not ids:
            return {}
        sql = (
            "SELECT cl.conversation_id, l.name FROM conversation_labels cl JOIN labels l"
            f" ON l.id = cl.label_id WHERE cl.conversation_id IN ({','.join('?' * len(ids))})"
            " ORDER BY l.name"
        )

        def op(conn: sqlite3.Connection) -> dict[int, list[str]]:
            out: dict[int, list[str]] = {}
            for r in conn.execute(sql, ids).fetchall():
                out.setdefault(r["conversation_id"], []).append(r["name"])
            return out

        return await self._store.read(op)

    async def label_conversation(
        self, conversation_id: int, label_id: int, rep_id: int, *, on: bool
    ) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            row = conn.execute(q.LABEL, (label_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no label {label_id}")
            if conn.execute(q.CONVERSATION_EXISTS, (conversation_id,)).fetchone() is None:
                raise NotFoundError(f"no conversation {conversation_id}")
            has = conn.execute(q.HAS_LABEL, (conversation_id, label_id)).fetchone() is not None
            if has == on:
                return False
            now = now_ms()
            if on:
                conn.execute(q.LABEL_ON, (conversation_id, label_id, rep_id, now))
            else:
                conn.execute(q.LABEL_OFF, (conversation_id, label_id))
            kind = LABEL_ADDED if on else LABEL_REMOVED
            data = q.event_data(q.label_from_row(row), rep_id)
            conn.execute(q.LABEL_EVENT, (kind, data, now, conversation_id))
            return True

        return await self._store.write(op)

    # -------------------------------------------------------------- teams
    async def teams(self) -> list[Team]:
        def op(conn: sqlite3.Connection) -> list[Team]:
            teams = conn.execute(q.TEAMS).fetchall()
            return q.teams_from_rows(teams, conn.execute(q.MEMBERS).fetchall())

        return await self._store.read(op)

    async def add_team(self, name: str) -> Team:
        def op(conn: sqlite3.Connection) -> Team:
            return Team(id=_unique(conn, q.ADD_TEAM, (name, now_ms()), f"a team {name!r}"),
                        name=name)  # fmt: skip

        return await self._store.write(op)

    async def rename_team(self, team_id: int, name: str) -> Team:
        def op(conn: sqlite3.Connection) -> Team:
            if conn.execute(q.TEAM, (team_id,)).fetchone() is None:
                raise NotFoundError(f"no team {team_id}")
            _unique(conn, q.RENAME_TEAM, (name, team_id), f"a team {name!r}")
            members = conn.execute(q.MEMBERS).fetchall()
            return q.teams_from_rows([{"id": team_id, "name": name}], members)[0]

        return await self._store.write(op)

    async def delete_team(self, team_id: int) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            conn.execute(q.EMPTY_TEAM, (team_id,))
            return conn.execute(q.DELETE_TEAM, (team_id,)).rowcount == 1

        return await self._store.write(op)

    async def set_team(self, rep_id: int, team_id: int | None) -> None:
        def op(conn: sqlite3.Connection) -> None:
            if conn.execute(q.REP_EXISTS, (rep_id,)).fetchone() is None:
                raise NotFoundError(f"no rep {rep_id}")
            if team_id is not None and conn.execute(q.TEAM, (team_id,)).fetchone() is None:
                raise NotFoundError(f"no team {team_id}")
            conn.execute(q.LEAVE_TEAM, (rep_id,))
            if team_id is not None:
                conn.execute(q.JOIN_TEAM, (rep_id, team_id))

        await self._store.write(op)

    async def team_rep_ids(self, team_name: str) -> list[int]:
        def op(conn: sqlite3.Connection) -> list[int]:
            return [r["rep_id"] for r in conn.execute(q.TEAM_REP_IDS, (team_name,)).fetchall()]

        return await self._store.read(op)

    # ---------------------------------------------------------- queue SLA
    async def queue_targets(self) -> list[QueueTargets]:
        def op(conn: sqlite3.Connection) -> list[QueueTargets]:
            return [q.targets_from_row(r) for r in conn.execute(q.QUEUE_TARGETS).fetchall()]

        return await self._store.read(op)

    async def set_queue_targets(self, targets: QueueTargets, rep_id: int) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.execute(q.SET_QUEUE_TARGETS, q.targets_args(targets, rep_id, now_ms()))

        await self._store.write(op)

    async def clear_queue_targets(self, queue: str) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            return conn.execute(q.CLEAR_QUEUE_TARGETS, (queue,)).rowcount == 1

        return await self._store.write(op)

    async def reply_times(self, since: Sequence[tuple[int, int]]) -> dict[int, ReplyTimes]:
        batches = q.reply_times_batches(since)

        def op(conn: sqlite3.Connection) -> dict[int, ReplyTimes]:
            out: dict[int, ReplyTimes] = {}
            for sql, args in batches:
                for row in conn.execute(sql, args).fetchall():
                    out[row["cid"]] = q.reply_times_from_row(row)
            return out

        return await self._store.read(op)


__all__ = ["SqliteDeskOrg"]
