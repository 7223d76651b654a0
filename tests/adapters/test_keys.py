"""The Redis key layout (allocation_engine/adapters/redis/keys.py): keys one FUNCTION changes
together share a hash slot, keys meant to spread do not, and no store builds a key of its own."""

from __future__ import annotations

import re
from pathlib import Path

from redis.crc import key_slot

from allocation_engine.adapters.redis import keys
from allocation_engine.orders.machines import OrderState

REDIS_ADAPTER = Path(keys.__file__).parent


def slot(key: str) -> int:
    return key_slot(key.encode())


def test_a_nodes_keys_share_one_slot_and_nodes_spread() -> None:
    """Every key of node N lives in N's slot, so one FUNCTION may hold a shipment there."""
    for node_id in ("DE-BER-1", "store:42", "supplier {x"):
        names = [*keys.node_keys(node_id), keys.node_applied(node_id)]
        assert {slot(name) for name in names} == {slot(keys.node_tag(node_id))}
    assert len({slot(keys.node_tag(f"N{i}")) for i in range(50)}) > 40


def test_the_node_keys_have_the_documented_names() -> None:
    assert keys.node_keys("A") == ("inv:{A}:pos", "inv:{A}:holds", "inv:{A}:exp", "inv:{A}:seq")
    assert keys.node_applied("A") == "inv:{A}:applied"
    assert keys.view("S1") == "view:{S1}"
    assert keys.reservation("r1") == "res:{r1}"
    assert keys.idempotency("k") == "idem:{k}"


def test_metadata_keys_share_one_slot() -> None:
    meta = [
        keys.NODES,
        keys.NODES_VERSION,
        keys.RULES,
        keys.RULES_REVISION,
        keys.SNAPSHOT_VERSION,
        keys.RESERVATION_EXPIRY,
    ]
    assert {slot(name) for name in meta} == {slot(keys.META)}


def test_every_workflow_key_shares_the_wf_slot() -> None:
    """wf_commit touches an order, its timeline, the log, the listings and the customer keys
    in one step, so they all share the `{wf}` slot."""
    names = [
        keys.ORDER_LOG,
        keys.ORDER_SEQUENCE,
        keys.ALL_ORDERS,
        keys.order("O-1"),
        keys.timeline("O-1"),
        keys.external("web", "ext-1"),
        keys.customer("C-1"),
        keys.email("ada@example.com"),
        keys.customer_orders("C-1"),
        *(keys.orders_in_state(state) for state in OrderState),
        keys.delivered("mail:O-1/1"),
    ]
    assert {slot(name) for name in names} == {slot(keys.WF)}


def test_external_ids_of_different_channels_never_collide() -> None:
    assert keys.external("a:b", "c") != keys.external("a", "b:c")


def test_no_other_redis_module_builds_a_key() -> None:
    """Key names are built in keys.py only: no other module of the Redis adapter holds a
    literal with a hash tag in its code (docstrings and comments may name keys)."""
    tagged = re.compile(r"(?:inv|view|res|idem):\{|\{\{?(?:meta|wf)\}")
    for module in REDIS_ADAPTER.glob("*.py"):
        if module.name == "keys.py":
            continue
        code = _code_lines(module.read_text())
        offending = [line for line in code if tagged.search(line)]
        assert offending == [], f"{module.name} builds keys: {offending}"


def _code_lines(text: str) -> list[str]:
    """Lines outside docstrings, without comments."""
    out, in_doc = [], False
    for line in text.splitlines():
        quotes = line.count('"""')
        if in_doc or quotes:
            if quotes == 1:
                in_doc = not in_doc
            continue
        out.append(line.split("#", 1)[0])
    return out
