"""`gateway reps add NAME ...` and `gateway reps list`: manage console reps.

Reps live in the database. The password is read from the terminal (twice) or,
with `--password-stdin`, from the first line of standard input (scripts).
With SQLite the gateway must be stopped (an SQLite store has a single writer
process); with PostgreSQL reps can be added while nodes run (a running node
sees a new rep after its next start or routing leader change).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from typing import Any

from gateway.errors import ConfigError, GatewayError
from gateway.phone_numbers import to_e164
from gateway.routing.models import RepDraft
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


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.app import open_store
    from gateway.routing.setup import open_routing_store

    draft = None
    if args.reps_command == "add":
        phone = None
        if args.phone:
            phone = to_e164(args.phone)
            if phone is None:
                raise ConfigError(f"--phone: not a phone number: {args.phone!r}")
        password = _password(args.password_stdin)
        if len(password) < 8:
            raise GatewayError("the password must have at least 8 characters")
        draft = RepDraft(
            username=args.username,
            display_name=args.name or args.username,
            password_hash=hash_password(password),
            skills=tuple(s.strip() for s in args.skills.split(",") if s.strip()),
            phone=phone,
            max_text=args.max_text,
            max_calls=args.max_calls,
        )
    store = await open_store(settings)
    try:
        routing = open_routing_store(store)
        if draft is not None:
            rep = await routing.add_rep(draft)
            print(f"added rep {rep.id} {rep.username} (skills: {', '.join(rep.skills)})")
            return 0
        for rep in await routing.list_reps():
            print(f"{rep.id}\t{rep.username}\t{rep.display_name}\t{','.join(rep.skills)}\t"
                  f"{rep.phone or '-'}\t{rep.presence.value}")  # fmt: skip
        return 0
    finally:
        await store.close()
