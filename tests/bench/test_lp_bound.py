"""The F1 yardstick LP, checked on instances small enough to solve by hand."""

from __future__ import annotations

import numpy as np
import pytest

from allocation_engine.bench import f1
from allocation_engine.bench.lp_bound import lp_bound
from tests.bench.test_f1 import miles

CITY = f1.Place("Springfield", 39.80, -89.65, 100_000)
CENTRE = f1.Place("IND1", 39.9797, -86.3833)
TINY = f1.Setting("tiny", "", "", items=2, max_size=2, types_per_size=1, periods=100, carry=1.0)


def instance(types: list[tuple[int, ...]], stock: list[int]) -> f1.Instance:
    """One city, one centre; 'no order' half the time, else the one order type."""
    return f1.Instance(
        setting=TINY,
        number=0,
        cities=(CITY,),
        centres=(CENTRE,),
        types=((), *types),
        arrival=np.array([[0.5], [0.5]]),
        closest=np.zeros((2, 1), dtype=np.int64),
        stock=np.array([stock], dtype=np.int64),
    )


def unit() -> float:
    return 0.423 + 0.000541 * miles(CENTRE, CITY)


def test_enough_stock_ships_every_expected_order_from_the_centre() -> None:
    """50 expected one-item orders, 60 units: 50 packages of one unit."""
    assert lp_bound(instance([(0,)], [60, 0])) == pytest.approx(50 * (8.759 + unit()), rel=1e-9)


def test_short_stock_sends_the_rest_to_the_dummy() -> None:
    """50 expected orders, 20 units: 20 from the centre, 30 at the dummy's double cost (the
    farthest centre is the only one)."""
    expected = 20 * (8.759 + unit()) + 30 * (2 * 8.759 + 2 * unit())
    assert lp_bound(instance([(0,)], [20, 0])) == pytest.approx(expected, rel=1e-9)


def test_items_of_one_order_share_the_package() -> None:
    """Two-item orders from one centre pay one package each, not two."""
    expected = 50 * (8.759 + 2 * unit())
    assert lp_bound(instance([(0, 1)], [60, 60])) == pytest.approx(expected, rel=1e-9)


def test_the_offline_bound_prices_the_realised_orders() -> None:
    """Over a sequence's own counts, the LP is what those orders cost at best: here every one of
    the sequence's orders ships from the centre."""
    small = f1.Instance.generate(f1.SETTINGS["small-0.75"], 0, periods=300)
    counts = small.realised_demand(0)
    assert counts.sum() == 300
    assert counts[1:].sum() == len(list(small.orders(0)))  # type 0 is "no order"
    one = instance([(0,)], [60, 0])
    assert lp_bound(one, np.array([[7.0], [40.0]])) == pytest.approx(40 * (8.759 + unit()))
