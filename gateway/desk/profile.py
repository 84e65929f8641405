"""A conversation's contact profile for the rep's desk: the customer's email and
phone, their tier and latest orders from the business backend (when it has an
account for them), their other conversations and their ratings."""

from __future__ import annotations

import logging
from typing import Any

from gateway.desk.store import DeskStore, SearchQuery
from gateway.errors import GatewayError
from gateway.models import IdentityKind
from gateway.protocols import Store

log = logging.getLogger(__name__)
ORDERS_SHOWN = 5
PAST_SHOWN = 20


async def _backend_part(backend: object, account_ref: str) -> dict[str, Any]:
    """Tier and latest orders, from a backend with `get_account` / `list_orders`
    (agent/backend.py); what it cannot answer is left out with the reason."""
    get_account = getattr(backend, "get_account", None)
    list_orders = getattr(backend, "list_orders", None)
    if get_account is None or list_orders is None:
        return {}
    try:
        account = await get_account(account_ref)
        orders = await list_orders(account_ref, limit=ORDERS_SHOWN) if account else []
    except Exception as exc:  # the backend's own errors: the profile does without
        log.warning("profile: the backend failed for account %s: %s", account_ref, exc)
        return {"backend_error": f"the business backend did not answer: {exc}"[:300]}
    if account is None:
        return {}
    return {
        "tier": getattr(account, "tier", None),
        "orders": [
            {"id": o.id, "status": str(o.status), "total": o.total,
             "placed_on": o.placed_on.isoformat(),
             "eta": o.eta.isoformat() if o.eta else None}
            for o in orders
        ],
    }  # fmt: skip


async def profile(
    store: Store, desk: DeskStore, backend: object | None, conversation_id: int
) -> dict[str, Any]:
    """The profile of the customer of `conversation_id` (the caller checked that the
    rep may see that conversation)."""
    conv = await store.get_conversation(conversation_id)
    customer = await store.get_customer(conv.customer_id)
    out: dict[str, Any] = {
        "customer_id": customer.id,
        "name": customer.display_name,
        "account": customer.account_ref,
        "emails": [i.value for i in customer.identities if i.kind is IdentityKind.EMAIL],
        "phones": [i.value for i in customer.identities if i.kind is IdentityKind.PHONE],
        "tier": None,
        "orders": [],
    }
    if backend is not None and customer.account_ref:
        try:
            out.update(await _backend_part(backend, customer.account_ref))
        except GatewayError as exc:
            out["backend_error"] = str(exc)
    past = await desk.search(SearchQuery(customer_id=customer.id, limit=PAST_SHOWN))
    out["conversations"] = [h.model_dump(mode="json") for h in past if h.id != conversation_id]
    out["ratings"] = [
        {"conversation_id": cid, "score": score}
        for cid, score in await desk.ratings_of(customer.id)
    ]
    return out


__all__ = ["profile"]
