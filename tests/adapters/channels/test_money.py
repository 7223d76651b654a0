"""The shared money reader: platform amounts to minor units, refusing what no price can be."""

from __future__ import annotations

import pytest

from allocation_engine.adapters.channels.money import minor_units, unit_price
from allocation_engine.engine.limits import MAX_MONEY
from allocation_engine.errors import InvalidInput


@pytest.mark.parametrize("amount", ["1e300", "1e999999", 1e300, "-1e999999", 10**30, "1e16"])
def test_an_amount_beyond_any_price_is_invalid_input_naming_the_field(amount: object) -> None:
    """Given amounts decimal cannot quantize (1e300, 1e999999, as strings and floats) or
    above MAX_MONEY minor units, then InvalidInput names the field, not InvalidOperation or
    Overflow."""
    with pytest.raises(InvalidInput) as refused:
        minor_units(amount, "EUR", "items[0].price")  # type: ignore[arg-type]
    assert [p.field for p in refused.value.problems] == ["items[0].price"]


def test_the_limit_itself_and_negatives_only_when_signed() -> None:
    """Given exactly MAX_MONEY minor units, then it is read; given a negative amount, then it
    is refused unless the caller reads a signed amount (Magento's item discounts)."""
    assert minor_units(str(MAX_MONEY / 100), "EUR", "price") == MAX_MONEY
    assert minor_units(MAX_MONEY, "JPY", "price") == MAX_MONEY
    with pytest.raises(InvalidInput):
        minor_units("-0.50", "EUR", "price")
    assert minor_units("-0.50", "EUR", "discount_amount", signed=True) == -50
    assert unit_price(2977, 2) == 1489  # half up
