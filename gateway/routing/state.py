"""The routing layer's app state (one `web.AppKey`), filled at start-up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.errors import GatewayError
from gateway.routing.auth import ConsoleAuth
from gateway.routing.hub import ConsoleHub
from gateway.routing.service import RoutingService
from gateway.routing.store import RoutingStore

if TYPE_CHECKING:
    from gateway.routing.approvals import ConsoleApprovals
    from gateway.routing.rating import Ratings
    from gateway.routing.views import ConsoleViews


@dataclass
class RoutingState:
    hub: ConsoleHub
    service: RoutingService | None = None
    auth: ConsoleAuth | None = None
    store: RoutingStore | None = None
    ratings: Ratings | None = None
    views: ConsoleViews | None = None
    approvals: ConsoleApprovals | None = None

    def ready(self) -> tuple[RoutingService, ConsoleAuth, RoutingStore]:
        if self.service is None or self.auth is None or self.store is None:
            raise GatewayError("routing is not started")
        return self.service, self.auth, self.store

    def console(self) -> tuple[ConsoleViews, ConsoleApprovals]:
        if self.views is None or self.approvals is None:
            raise GatewayError("routing is not started")
        return self.views, self.approvals


ROUTING = web.AppKey("routing", RoutingState)
