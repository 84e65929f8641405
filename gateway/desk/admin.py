"""`RepAdmin`: adding, changing, disabling reps and resetting their passwords, with
the checks both the console's admin screens and `gateway reps` apply.

Skills are checked against the skills the configured queues ask for
(GATEWAY_QUEUES): a skill no queue needs would never route anything to the rep,
so a typo (`salez`) is refused with the list of known skills.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

from pydantic import ValidationError

from gateway.errors import ConfigError
from gateway.phone_numbers import to_e164
from gateway.routing.models import Rep, RepChanges, RepDraft, Role
from gateway.routing.passwords import hash_password
from gateway.routing.store import RoutingStore

MIN_PASSWORD = 8


class AdminError(ConfigError):
    """Input an admin must correct (the console answers 400, the command exits 2)."""


def known_skills(queues: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """Every skill some queue asks for, sorted."""
    return tuple(sorted({skill for skills in queues.values() for skill in skills}))


class RepAdmin:
    def __init__(
        self, routing: RoutingStore, skills: Iterable[str],
        refreshed: Callable[[Rep], Awaitable[object]] | None = None,
    ) -> None:  # fmt: skip
        self.routing = routing
        self.skills = tuple(skills)
        self._refreshed = refreshed  # tells the routing at once (else it reads them soon)

    def check_skills(self, skills: Iterable[str]) -> tuple[str, ...]:
        wanted = tuple(dict.fromkeys(s.strip() for s in skills if s.strip()))
        unknown = [s for s in wanted if s not in self.skills]
        if unknown:
            raise AdminError(
                f"unknown skill{'s' if len(unknown) > 1 else ''} {', '.join(unknown)};"
                f" known skills (from GATEWAY_QUEUES): {', '.join(self.skills)}"
            )
        return wanted

    @staticmethod
    def check_phone(phone: str | None) -> str | None:
        if not phone:
            return phone
        number = to_e164(phone)
        if number is None:
            raise AdminError(f"phone: not a phone number: {phone!r}")
        return number

    @staticmethod
    async def password_hash(password: str) -> str:
        if len(password) < MIN_PASSWORD:
            raise AdminError(f"the password must have at least {MIN_PASSWORD} characters")
        # scrypt takes tens of milliseconds of CPU: never on the event loop.
        return await asyncio.to_thread(hash_password, password)

    async def list(self) -> list[Rep]:
        return await self.routing.list_reps(include_disabled=True)

    async def add(
        self, username: str, password: str, *, display_name: str | None = None,
        skills: Iterable[str] = ("general",), role: Role = Role.REP, phone: str | None = None,
        max_text: int | None = None, max_calls: int | None = None,
    ) -> Rep:  # fmt: skip
        """ConflictError when the username is taken; AdminError for bad input."""
        checked = self.check_skills(skills)
        number = self.check_phone(phone)
        try:
            RepDraft(username=username, display_name=display_name or username,
                     password_hash="-", skills=checked)  # fmt: skip
        except ValidationError as exc:
            raise AdminError(first_error(exc)) from exc
        draft = RepDraft(
            username=username, display_name=display_name or username,
            password_hash=await self.password_hash(password), skills=checked, phone=number,
            max_text=max_text, max_calls=max_calls, role=role,
        )  # fmt: skip
        rep = await self.routing.add_rep(draft)
        await self._tell(rep)
        return rep

    async def update(
        self, username: str, *, display_name: str | None = None,
        skills: Iterable[str] | None = None, role: Role | None = None,
        phone: str | None = None, max_text: int | None = None, max_calls: int | None = None,
        disabled: bool | None = None, password: str | None = None,
    ) -> Rep:  # fmt: skip
        """Change only what is given. NotFoundError without such a rep."""
        try:
            changes = RepChanges(
                display_name=display_name,
                skills=None if skills is None else self.check_skills(skills),
                phone=self.check_phone(phone),
                max_text=max_text, max_calls=max_calls, role=role, disabled=disabled,
                password_hash=None if password is None else await self.password_hash(password),
            )  # fmt: skip
        except ValidationError as exc:
            raise AdminError(first_error(exc)) from exc
        rep = await self.routing.update_rep(username, changes)
        await self._tell(rep)
        return rep

    async def _tell(self, rep: Rep) -> None:
        if self._refreshed is not None:
            await self._refreshed(rep)


def first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    field = str(err["loc"][0]) if err["loc"] else "rep"
    return f"{field}: {err['msg']}"


__all__ = ["AdminError", "RepAdmin", "first_error", "known_skills"]
