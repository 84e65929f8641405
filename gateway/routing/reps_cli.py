"""`gateway reps add NAME ...`, `gateway reps update NAME ...` and `gateway reps list`:
manage console reps.

Reps live in the database. The password is read from the terminal (twice) or,
with `--password-stdin`, from the first line of standard input (scripts).
With PostgreSQL reps are added and changed while nodes run: the change NOTIFYs
at its commit and the routing leader reads its reps again at once. With SQLite
the gateway must be stopped (an SQLite store has a single writer process; the
command says so): stop it, add or change reps, start it (it reads them at start).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from typing import Any

from pydantic import ValidationError

from gateway.errors import ConfigError, GatewayError, StoreError
from gateway.phone_numbers import to_e164
from gateway.protocols import Store
from gateway.routing.models import RepChanges, RepDraft
from gateway.routing.passwords import hash_password
from gateway.settings import Settings


def add_parser(sub: Any) -> None:
    reps = sub.add_parser("reps", help="manage the reps who log in to the console")
    rsub = reps.add_subparsers(dest="reps_command", metavar="ACTION", required=True)
    add = rsub.add_parser("add", help="add a rep")
    add.add_argument("username")
    add.add_argument("--name", help="display name shown to customers (default: username)")
    add.add_argument("--skills", default="general", help="comma-separated, e.g. billing,general")
    add.add_argument("--phone", help="E.164 number rung for warm call transfers")
    add.add_argument("--max-text", type=int, help="text conversations at once (default setting)")
    add.add_argument("--max-calls", type=int, help="calls at once (default setting)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    update = rsub.add_parser("update", help="change a rep (only what is given)")
    update.add_argument("username")
    update.add_argument("--name", help="display name shown to customers")
    update.add_argument("--skills", help="comma-separated, replaces the rep's skills")
    update.add_argument("--phone", help="E.164 number for warm call transfers ('' removes it)")
    update.add_argument("--max-text", type=int, help="text conversations at once")
    update.add_argument("--max-calls", type=int, help="calls at once")
    rsub.add_parser("list", help="list reps")


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise GatewayError("the passwords differ")
    return first


def run(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_run(args, settings))


def _phone(value: str | None) -> str | None:
    if not value:
        return value
    phone = to_e164(value)
    if phone is None:
        raise ConfigError(f"--phone: not a phone number: {value!r}")
    return phone


def _skills(value: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in value.split(",") if s.strip())


def _changes(args: argparse.Namespace) -> RepChanges:
    try:
        return RepChanges(
            display_name=args.name,
            skills=None if args.skills is None else _skills(args.skills),
            phone=_phone(args.phone),
            max_text=args.max_text,
            max_calls=args.max_calls,
        )
    except ValidationError as exc:
        raise ConfigError(f"reps update: {_first_error(exc)}") from exc


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    field = str(err["loc"][0]) if err["loc"] else ""
    where = {"display_name": "--name", "username": "USERNAME", "": "rep"}.get(
        field, "--" + field.replace("_", "-")
    )
    return f"{where}: {err['msg']}"


async def _open(settings: Settings) -> Store:
    from gateway.store.opening import open_store

    try:
        return await open_store(settings)
    except StoreError as exc:
        if not settings.store_url.startswith("sqlite:"):
            raise
        raise StoreError(
            f"{exc} To add or change reps on SQLite: stop the gateway, run this command,"
            " start the gateway again (it reads its reps at start)."
        ) from exc


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.routing.setup import open_routing_store

    draft = None
    changes = _changes(args) if args.reps_command == "update" else None
    if args.reps_command == "add":
        phone = _phone(args.phone)
        password = _password(args.password_stdin)
        if len(password) < 8:
            raise GatewayError("the password must have at least 8 characters")
        try:
            draft = RepDraft(
                username=args.username,
                display_name=args.name or args.username,
                password_hash=hash_password(password),
                skills=_skills(args.skills),
                phone=phone,
                max_text=args.max_text,
                max_calls=args.max_calls,
            )
        except ValidationError as exc:
            raise ConfigError(f"reps add: {_first_error(exc)}") from exc
    store = await _open(settings)
    try:
        routing = open_routing_store(store)
        if draft is not None:
            rep = await routing.add_rep(draft)
            print(f"added rep {rep.id} {rep.username} (skills: {', '.join(rep.skills)})")
            return 0
        if changes is not None:
            rep = await routing.update_rep(args.username, changes)
            print(f"updated rep {rep.id} {rep.username}: {rep.display_name}, skills"
                  f" {','.join(rep.skills)}, phone {rep.phone or '-'}")  # fmt: skip
            return 0
        for rep in await routing.list_reps():
            print(f"{rep.id}\t{rep.username}\t{rep.display_name}\t{','.join(rep.skills)}\t"
                  f"{rep.phone or '-'}\t{rep.presence.value}")  # fmt: skip
        return 0
    finally:
        await store.close()
