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
    from gateway.routing.feed import ConsoleFeed
    from gateway.routing.front import RoutingFront
    from gateway.routing.rating import Ratings
    from gateway.routing.views import ConsoleViews


@dataclass
class RoutingState:
    hub: ConsoleHub
    service: RoutingService | None = None
    auth: ConsoleAuth | None = None
    store: RoutingStore | None = None
    ratings: Ratings | None = None
    front: RoutingFront | None = None  # what the API and sockets call (any node)
    feed: ConsoleFeed | None = None
    # This node's own; they read the router's picture, so only the leader's serve
    # requests (the API reaches them through `front`).
    views: ConsoleViews | None = None
    approvals: ConsoleApprovals | None = None

    def ready(self) -> tuple[RoutingFront, ConsoleAuth, RoutingStore]:
        if self.front is None or self.auth is None or self.store is None:
            raise GatewayError("routing is not started")
        return self.front, self.auth, self.store

    def console(self) -> tuple[ConsoleViews, ConsoleApprovals]:
        """This node's console reads and approvals (tests; the API goes through `front`)."""
        if self.views is None or self.approvals is None:
            raise GatewayError("routing is not started")
        return self.views, self.approvals


ROUTING = web.AppKey("routing", RoutingState)
