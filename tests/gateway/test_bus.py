"""Errors raised where a bus call is served come back to the caller as the same kind
of error (the console API maps them to the same HTTP statuses on every node)."""

from __future__ import annotations

import pytest

from gateway.bus import RemoteError, error_payload, raise_remote
from gateway.errors import BackendError, ConflictError, NotFoundError, StoreError
from gateway.routing.router import RoutingError


@pytest.mark.parametrize(
    ("raised", "arrives_as"),
    [
        (NotFoundError("no conversation 7 for you"), NotFoundError),
        (RoutingError("the offer is gone"), ConflictError),  # a subclass: its nearest kind
        (BackendError("order 1001 was already refunded"), BackendError),
        (ValueError("bad presence"), ValueError),
        (StoreError("database gone"), RemoteError),  # nothing the caller maps: generic
        (KeyError("x"), RemoteError),
    ],
)
def test_errors_cross_the_bus_as_their_kind(raised: Exception, arrives_as: type[Exception]) -> None:
    with pytest.raises(arrives_as) as caught:
        raise_remote(error_payload(raised))
    assert type(caught.value) is arrives_as
    assert str(caught.value) == str(raised)
