"""The desk's app state (one `web.AppKey`), filled at start-up (desk/setup.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from gateway.api_auth import BearerAuth
from gateway.desk.admin import RepAdmin
from gateway.desk.gaps import GapEmbedder
from gateway.desk.sla import BusinessClock
from gateway.desk.store import DeskStore
from gateway.errors import GatewayError


@dataclass
class DeskState:
    store: DeskStore | None = None
    bearer: BearerAuth | None = None
    admin: RepAdmin | None = None
    gaps: GapEmbedder = field(default_factory=GapEmbedder)  # the gaps report's WordLlama
    sla_clock: BusinessClock | None = None  # one for the app: it caches opening spans

    def clock(self) -> BusinessClock:
        if self.sla_clock is None:
            raise GatewayError("the desk is not started")
        return self.sla_clock

    def ready(self) -> tuple[DeskStore, BearerAuth, RepAdmin]:
        if self.store is None or self.bearer is None or self.admin is None:
            raise GatewayError("the desk is not started")
        return self.store, self.bearer, self.admin


DESK = web.AppKey("desk", DeskState)
