"""`gateway reps add|update|disable|enable|passwd|list`: manage console reps.

Reps live in the database, so the command works while the gateway runs:
with PostgreSQL the change NOTIFYs at its commit and the routing leader reads
its reps again at once; with SQLite, whose file the running gateway holds, the
command writes the reps rows beside it (SQLite's own locking orders the two
writers; reps are not in the gateway's writer caches) and the gateway reads its
reps again within a few seconds (routing/leader.py). The same checks apply as in
the console's admin screens (gateway/desk/admin.py): skills must be ones some
queue asks for, passwords have at least 8 characters.

The password is read from the terminal (twice) or, with `--password-stdin`, from
the first line of standard input (scripts).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from typing import Any

from gateway.desk.admin import AdminError, RepAdmin, known_skills
from gateway.errors import GatewayError, StoreError
from gateway.protocols import Store
from gateway.routing.models import Rep, Role
from gateway.settings import Settings

_ROLES = [r.value for r in Role]


def _rep_options(parser: Any, *, adding: bool) -> None:
    parser.add_argument("username")
    parser.add_argument("--name", help="display name shown to customers"
                        + (" (default: username)" if adding else ""))  # fmt: skip
    parser.add_argument("--skills", default="general" if adding else None,
                        help="comma-separated skills some queue asks for, e.g. billing,general"
                        + (" (default: general)" if adding else "; replaces the rep's"),
                        )  # fmt: skip
    parser.add_argument("--role", choices=_ROLES, default="rep" if adding else None,
                        help="rep, supervisor (reads every conversation and the reports) or"
                        " admin (also manages reps and API tokens)")  # fmt: skip
    parser.add_argument("--phone", help="E.164 number rung for warm call transfers"
                        + ("" if adding else " ('' removes it)"))  # fmt: skip
    parser.add_argument("--max-text", type=int, help="text conversations at once")
    parser.add_argument("--max-calls", type=int, help="calls at once")


def add_parser(sub: Any) -> None:
    reps = sub.add_parser("reps", help="manage the reps who log in to the console")
    rsub = reps.add_subparsers(dest="reps_command", metavar="ACTION", required=True)
    add = rsub.add_parser("add", help="add a rep")
    _rep_options(add, adding=True)
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    update = rsub.add_parser("update", help="change a rep (only what is given)")
    _rep_options(update, adding=False)
    for name, text in (("disable", "disable a rep: logged out, can no longer log in"),
                       ("enable", "enable a disabled rep again")):  # fmt: skip
        rsub.add_parser(name, help=text).add_argument("username")
    passwd = rsub.add_parser("passwd", help="set a rep's password (ends their logins)")
    passwd.add_argument("username")
    passwd.add_argument("--password-stdin", action="store_true", help="read it from stdin")
    rsub.add_parser("list", help="list reps (disabled ones too)")


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line.strip():
            raise GatewayError("no password on standard input (--password-stdin reads one line)")
        return line.rstrip("\n")
    try:
        first = getpass.getpass("Password: ")
        again = getpass.getpass("Again: ")
    except EOFError as exc:  # no terminal and nothing piped (`</dev/null`)
        raise GatewayError(
            "no password given: type it at the prompt, or pipe it with --password-stdin"
        ) from exc
    if again != first:
        raise GatewayError("the passwords differ")
    return first


def run(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_run(args, settings))


def _skills(value: str | None) -> list[str] | None:
    return None if value is None else [s.strip() for s in value.split(",") if s.strip()]


def _cli_error(exc: AdminError) -> GatewayError:
    """`max_calls: ...` as `--max-calls: ...` (the option the user typed)."""
    text = str(exc)
    field, sep, rest = text.partition(": ")
    names = {"display_name": "--name", "username": "USERNAME"}
    if sep and field.isidentifier():
        text = f"{names.get(field, '--' + field.replace('_', '-'))}: {rest}"
    return GatewayError(f"reps {text}")


async def _open(settings: Settings) -> tuple[Store, bool]:
    """The store, and whether it is opened beside a running gateway (SQLite)."""
    from gateway.store.opening import open_store

    try:
        return await open_store(settings), False
    except StoreError as exc:
        if not settings.store_url.startswith("sqlite:///") or "another gateway" not in str(exc):
            raise
    from pathlib import Path

    from gateway.store.sqlite import SqliteStore

    path = Path(settings.store_url.removeprefix("sqlite:///"))
    return SqliteStore(path, synchronous=settings.sqlite_synchronous, exclusive=False), True


def _done(command: str, rep: Rep) -> str:
    if command == "add":
        return (
            f"added rep {rep.id} {rep.username} (skills: {', '.join(rep.skills)}, role {rep.role})"
        )
    if command == "update":
        return (f"updated rep {rep.id} {rep.username}: {rep.display_name}, skills"
                f" {','.join(rep.skills)}, phone {rep.phone or '-'}, role {rep.role}")  # fmt: skip
    verb = {"disable": "disabled", "enable": "enabled", "passwd": "new password for"}[command]
    return f"{verb} rep {rep.id} {rep.username}"


def _line(rep: Rep) -> str:
    state = "disabled" if rep.disabled else rep.presence.value
    return (f"{rep.id}\t{rep.username}\t{rep.display_name}\t{','.join(rep.skills)}\t"
            f"{rep.phone or '-'}\t{rep.role.value}\t{state}")  # fmt: skip


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.routing.setup import open_routing_store

    command = args.reps_command
    password = None
    if command in ("add", "passwd"):
        password = _password(args.password_stdin)
    store, beside = await _open(settings)
    try:
        admin = RepAdmin(open_routing_store(store), known_skills(settings.queues))
        try:
            rep = await _act(admin, args, password)
        except AdminError as exc:
            raise _cli_error(exc) from exc
        if rep is None:
            return 0
        print(_done(command, rep))
        if beside:
            print("the running gateway reads its reps again within a few seconds",
                  file=sys.stderr)  # fmt: skip
        return 0
    finally:
        await store.close()


async def _act(admin: RepAdmin, args: argparse.Namespace, password: str | None) -> Rep | None:
    command = args.reps_command
    if command == "list":
        for rep in await admin.list():
            print(_line(rep))
        return None
    if command == "add":
        assert password is not None
        return await admin.add(
            args.username, password, display_name=args.name, skills=_skills(args.skills) or (),
            role=Role(args.role), phone=args.phone, max_text=args.max_text,
            max_calls=args.max_calls,
        )  # fmt: skip
    if command == "update":
        return await admin.update(
            args.username, display_name=args.name, skills=_skills(args.skills),
            role=None if args.role is None else Role(args.role), phone=args.phone,
            max_text=args.max_text, max_calls=args.max_calls,
        )  # fmt: skip
    if command == "passwd":
        return await admin.update(args.username, password=password)
    return await admin.update(args.username, disabled=command == "disable")
