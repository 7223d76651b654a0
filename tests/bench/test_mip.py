"""The MIP formulation (SCIP, CBC through pywraplp) proves the same optimum as the engine's CP-SAT
model, on small instances under a range of fences."""

from __future__ import annotations

from dataclasses import replace

import pytest

from allocation_engine.bench import f2
from allocation_engine.bench.mip import allocate_mip, available_backends
from allocation_engine.engine import Order, OrderLine, RuleSet, allocate

RULES = {
    "defaults": RuleSet(),
    "partial": RuleSet(allow_partial=True, unfilled_unit_penalty=6.0),
    "one-package": RuleSet(ship_complete=True, allow_partial=True, unfilled_unit_penalty=30.0),
    "two-packages": RuleSet(max_shipments=2),
    "no-line-split": RuleSet(allow_line_split=False),
    "near-and-dear": RuleSet(
        max_distance_km=150.0, shipment_cost=20.0, allow_partial=True, unfilled_unit_penalty=15.0
    ),
}


def grouped(order: Order) -> Order:
    """The same order with its first two lines in one ship-together group."""
    lines = [
        OrderLine(line.sku, line.quantity, "g" if j < 2 else None)
        for j, line in enumerate(order.lines)
    ]
    return replace(order, lines=tuple(lines))


@pytest.mark.parametrize("backend", [b for b in ("SCIP", "CBC") if b in available_backends()])
@pytest.mark.parametrize("rules", list(RULES), ids=list(RULES))
def test_mip_optimum_equals_cp_sat(backend: str, rules: str) -> None:
    """Given small F2 instances (50 nodes, 3 and 8 lines, sparse stock), when the MIP and the
    engine both prove optimality, then their costs agree to a millionth."""
    ruleset = RULES[rules]
    for cell in (f2.Cell(50, 3, 0.05), f2.Cell(50, 8, 0.2)):
        for inst in f2.instances(cell, 2):
            for order in (inst.order, grouped(inst.order)):
                exact = allocate(order, inst.network, inst.inventory, ruleset)
                mip = allocate_mip(
                    order, inst.network, inst.inventory, ruleset, backend=backend, time_limit=30
                )
                assert (exact.status.value, mip.status.value) in {
                    ("OPTIMAL", "OPTIMAL"),
                    ("INFEASIBLE", "INFEASIBLE"),
                }
                assert mip.total_cost == pytest.approx(exact.total_cost, rel=1e-6, abs=1e-6)
                assert mip.units_unfilled == exact.units_unfilled
