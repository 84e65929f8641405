"""The gateway's one exception tree. Vendor errors are translated at the edge
(`raise GatewayError(...) from exc`) so nothing above an adapter sees them."""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""


class ConfigError(GatewayError):
    """Settings are missing or invalid; the message names each bad setting."""


class StoreError(GatewayError):
    """The durable store failed or was used wrongly."""


class ConflictError(StoreError):
    """An optimistic update lost a race (the conversation moved on meanwhile)."""


class NotFoundError(StoreError):
    """A record asked for by id does not exist."""


class ProtocolError(GatewayError):
    """A client or provider sent something that does not follow the protocol."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class AuthError(GatewayError):
    """A request's signature, token or credentials were missing or wrong."""


class ChannelError(GatewayError):
    """A channel could not deliver to the customer."""


class DeliveryError(ChannelError):
    """A stored reply was not delivered. `code` names why (the provider's error code,
    `timeout`, ...); `retry` says whether trying again later may succeed (the provider
    was unreachable or busy and surely did not accept it), else it failed for good."""

    def __init__(
        self, code: str, message: str, *, retry: bool = False, not_before_s: float = 0.0,
        not_taken: bool = False,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.code = code
        self.retry = retry
        self.not_before_s = not_before_s  # the next attempt waits at least this long
        self.not_taken = not_taken  # the provider surely did not take it (no doubt left)


class BackendError(GatewayError):
    """The business backend failed or refused a call."""


class GuardrailRefusal(GatewayError):
    """A tool call was refused by a guardrail (wrong customer, rate limit, ...)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


class LlmError(GatewayError):
    """The language model server failed, timed out, or answered something unusable.
    `kind` says which: "timeout", "connection", "status", "broken_stream", "garbage"."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
