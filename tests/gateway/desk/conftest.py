"""The routing tests' desk (the real app on each store backend) serves these too."""

from tests.gateway.routing.conftest import desk, open_desk

__all__ = ["desk", "open_desk"]
