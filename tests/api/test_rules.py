"""RulesService over gRPC: read, validate without changing, publish for the next request."""

from __future__ import annotations

import grpc
import pytest

from allocation_engine.proto.allocation.v1 import allocation_pb2 as apb
from allocation_engine.proto.allocation.v1 import allocation_pb2_grpc as apb_grpc
from allocation_engine.proto.allocation.v1 import rules_pb2 as rpb
from allocation_engine.proto.allocation.v1 import rules_pb2_grpc as rpb_grpc
from tests.support.grpc_inventory import order

WAREHOUSES_ONLY = 'name = "warehouses"\nversion = "7"\n[fences.node_types]\nB2C = ["warehouse"]\n'


def test_the_default_rules_are_served_until_some_are_published(
    rules: rpb_grpc.RulesServiceStub,
) -> None:
    current = rules.GetRules(rpb.GetRulesRequest()).rules
    assert (current.name, current.revision) == ("default", 0)
    assert "[fences]" in current.toml


def test_validate_reports_every_problem_and_changes_nothing(
    rules: rpb_grpc.RulesServiceStub,
) -> None:
    bad = "[costs]\nunit_cost = -1\n[fences]\nmax_shipments = 0\n"
    answer = rules.ValidateRules(rpb.ValidateRulesRequest(toml=bad))
    assert not answer.valid
    assert {p.field for p in answer.problems} == {"costs.unit_cost", "fences.max_shipments"}
    assert rules.GetRules(rpb.GetRulesRequest()).rules.revision == 0


def test_published_rules_apply_to_the_next_request(
    rules: rpb_grpc.RulesServiceStub, allocation: apb_grpc.AllocationServiceStub
) -> None:
    """B=3 needs the Munich store; once stores are fenced out the order is infeasible."""
    before = allocation.Allocate(apb.AllocateRequest(order=order(B=3))).plan
    assert before.status == apb.PLAN_STATUS_OPTIMAL
    published = rules.PutRules(rpb.PutRulesRequest(toml=WAREHOUSES_ONLY)).rules
    assert (published.name, published.version, published.revision) == ("warehouses", "7", 1)
    after = allocation.Allocate(apb.AllocateRequest(order=order(B=3))).plan
    assert after.status == apb.PLAN_STATUS_INFEASIBLE
    assert after.rules_name == "warehouses"


def test_a_stale_revision_is_aborted(rules: rpb_grpc.RulesServiceStub) -> None:
    rules.PutRules(rpb.PutRulesRequest(toml=WAREHOUSES_ONLY))
    with pytest.raises(grpc.RpcError) as caught:
        rules.PutRules(rpb.PutRulesRequest(toml='name = "x"', expected_revision=0))
    assert caught.value.code() == grpc.StatusCode.ABORTED
    assert rules.GetRules(rpb.GetRulesRequest()).rules.name == "warehouses"


def test_a_bad_rule_set_is_invalid_argument_and_not_published(
    rules: rpb_grpc.RulesServiceStub,
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        rules.PutRules(rpb.PutRulesRequest(toml="[fences]\nmax_shipments = 0\n"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert rules.GetRules(rpb.GetRulesRequest()).rules.revision == 0
