"""The tool layer: schemas, guardrails and audit events, independent of the policy."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from agent.demo_backend import DemoBackend
from agent.kb import KnowledgeBase
from agent.tool_models import CancelSubscriptionArgs, ListOrdersArgs, LookupOrderArgs, NoArgs
from agent.tools import (
    ORDER_LIST,
    ORDER_LOOKUP,
    PASSWORD_RESET,
    SUBSCRIPTION_CANCEL,
    TOOLS,
    Toolbox,
    tool_schemas,
)
from gateway.errors import GuardrailRefusal
from tests.agent.harness import MemoryLedger, customer


def box(
    backend: DemoBackend, ledger: MemoryLedger, kb: KnowledgeBase, account: str | None
) -> Toolbox:
    return Toolbox(backend, ledger, kb, customer(1, account=account))


def test_every_tool_has_a_json_schema() -> None:
    schemas = tool_schemas()
    assert {s["function"]["name"] for s in schemas} == set(TOOLS)
    for schema in schemas:
        params = schema["function"]["parameters"]
        assert params["type"] == "object"
        assert params.get("additionalProperties") is False
        # No tool lets a caller name the account it acts on.
        assert not {"account", "account_id", "customer_id"} & set(params.get("properties", {}))
        json.dumps(schema)
    cancel = TOOLS["subscription_cancel"].schema()["function"]["parameters"]
    assert cancel["required"] == ["confirmed"]


async def test_lookup_of_own_order(
    backend: DemoBackend, ledger: MemoryLedger, kb: KnowledgeBase
) -> None:
    tools = box(backend, ledger, kb, "C-1001")
    result = await tools.call(ORDER_LOOKUP, LookupOrderArgs(order_id="1001"))
    assert result.order is not None and result.order.tracking_number == "1Z999AA10123456784"
    missing = await tools.call(ORDER_LOOKUP, LookupOrderArgs(order_id="9999"))
    assert missing.order is None
    assert [e.kind for e in tools.events] == ["tool.order_lookup", "tool.order_lookup"]


async def test_other_customers_order_is_refused(
    backend: DemoBackend, ledger: MemoryLedger, kb: KnowledgeBase
) -> None:
    tools = box(backend, ledger, kb, "C-1001")
    with pytest.raises(GuardrailRefusal) as refused:
        await tools.call(ORDER_LOOKUP, LookupOrderArgs(order_id="2001"))
    assert refused.value.rule == "other_customer"
    assert "FedEx" not in refused.value.message
    (event,) = tools.events
    assert event.kind == "tool.refused"
    assert event.data["rule"] == "other_customer" and event.data["tool"] == "order_lookup"


async def test_anonymous_customer_is_refused_politely(
    backend: DemoBackend, ledger: MemoryLedger, kb: KnowledgeBase
) -> None:
    tools = box(backend, ledger, kb, None)
    with pytest.raises(GuardrailRefusal) as refused:
        await tools.call(ORDER_LIST, ListOrdersArgs())
    assert refused.value.rule == "unverified"
    with pytest.raises(GuardrailRefusal) as refused:
        await tools.call(PASSWORD_RESET, NoArgs())
    assert refused.value.rule == "unverified"
    assert [e.data["rule"] for e in tools.events] == ["unverified", "unverified"]


async def test_unknown_account_is_refused(
    backend: DemoBackend, ledger: MemoryLedger, kb: KnowledgeBase
) -> None:
    tools = box(backend, ledger, kb, "C-9999")
    with pytest.raises(GuardrailRefusal) as refused:
        await tools.call(ORDER_LIST, ListOrdersArgs())
    assert refused.value.rule == "unknown_account"


async def test_reset_limit_counts_a_rolling_day(
    backend: DemoBackend, ledger: MemoryLedger, kb: KnowledgeBase
) -> None:
    now = datetime.now(UTC)
    ledger.rows += [(1, "tool.password_reset", now - timedelta(hours=25))] * 3
    ledger.rows += [(1, "tool.password_reset", now - timedelta(hours=1))] * 2
    ledger.rows += [(2, "tool.password_reset", now)] * 5  # someone else's
    tools = box(backend, ledger, kb, "C-1001")
    sent = await tools.call(PASSWORD_RESET, NoArgs())
    assert sent.sent_to == "j***@example.com" and sent.remaining_today == 0
    # The reset of this same turn counts before it reaches the ledger.
    with pytest.raises(GuardrailRefusal) as refused:
        await tools.call(PASSWORD_RESET, NoArgs())
    assert refused.value.rule == "rate_limit"
    assert await backend.password_resets_sent("C-1001") == 1


async def test_cancel_requires_confirmation(
    backend: DemoBackend, ledger: MemoryLedger, kb: KnowledgeBase
) -> None:
    tools = box(backend, ledger, kb, "C-1005")
    with pytest.raises(GuardrailRefusal) as refused:
        await tools.call(SUBSCRIPTION_CANCEL, CancelSubscriptionArgs(confirmed=False))
    assert refused.value.rule == "not_confirmed"
    sub = await backend.get_subscription("C-1005")
    assert sub is not None and sub.status == "active"
    done = await tools.call(SUBSCRIPTION_CANCEL, CancelSubscriptionArgs(confirmed=True))
    assert done.cancelled
    again = await tools.call(SUBSCRIPTION_CANCEL, CancelSubscriptionArgs(confirmed=True))
    assert not again.cancelled


async def test_call_json_for_a_model(
    backend: DemoBackend, ledger: MemoryLedger, kb: KnowledgeBase
) -> None:
    tools = box(backend, ledger, kb, "C-1001")
    ok = await tools.call_json("order_lookup", '{"order_id": "1002"}')
    assert ok["ok"] is True and ok["result"]["order"]["status"] == "processing"
    json.dumps(ok)
    theirs = await tools.call_json("order_lookup", {"order_id": "2001"})
    assert theirs == {"ok": False, "error": "other_customer", "message": theirs["message"]}
    assert "771234567890" not in json.dumps(theirs)
    bad = await tools.call_json("order_lookup", {"order_id": "1; DROP TABLE"})
    assert bad["error"] == "invalid_arguments"
    extra = await tools.call_json("order_lookup", {"order_id": "1001", "account_id": "C-1002"})
    assert extra["error"] == "invalid_arguments"  # no smuggling in another account
    unconfirmed = await tools.call_json("subscription_cancel", {})
    assert unconfirmed["error"] == "invalid_arguments"
    nope = await tools.call_json("drop_database", {})
    assert nope["error"] == "unknown_tool"
    assert await tools.call_json("order_lookup", "{not json") == {
        "ok": False,
        "error": "invalid_arguments",
        "message": "arguments are not valid JSON",
    }
    rules = [e.data.get("rule") for e in tools.events if e.kind == "tool.refused"]
    assert rules == [
        "other_customer",
        "invalid_arguments",
        "invalid_arguments",
        "invalid_arguments",
        "unknown_tool",
        "invalid_arguments",
    ]


async def test_kb_search_query_is_masked_in_the_event(
    backend: DemoBackend, ledger: MemoryLedger, kb: KnowledgeBase
) -> None:
    tools = box(backend, ledger, kb, None)
    result = await tools.call_json(
        "kb_search", {"query": "refund to card 4111 1111 1111 1111 please"}
    )
    assert result["ok"] is True and result["result"]["hits"]
    (event,) = tools.events
    assert event.kind == "tool.kb_search"
    assert "4111 1111" not in json.dumps(event.data)
