"""Platform amounts to integer minor units, the only money a `ChannelLine` carries.

Platforms send prices as decimal strings ("19.99"), JSON numbers (19.99) or already in minor
units; each is read through `decimal.Decimal` (a float through its shortest repr, so 19.99 stays
19.99 and never becomes 19.989999...), scaled by the currency's ISO 4217 exponent and rounded
half up to a whole minor unit (a net price computed by the shop may carry more digits).
Platforms that price a line as a whole (unit price x quantity, less its discounts) are read
per unit through `unit_price`, rounded the same way.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, Overflow

from allocation_engine.engine.limits import MAX_MONEY
from allocation_engine.errors import InvalidInput

ZERO_DECIMAL = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND"}
    | {"VUV", "XAF", "XOF", "XPF"}
)
"""ISO 4217 currencies without minor units: 1 JPY is 1 minor unit."""

THREE_DECIMAL = frozenset({"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"})
"""ISO 4217 currencies with three decimals (1 KWD = 1000 fils)."""


def exponent(currency: str) -> int:
    """The number of decimals of `currency` (ISO 4217 code, any case): 0, 2 or 3."""
    code = currency.upper()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def minor_units(
    amount: str | int | float, currency: str, field: str, *, signed: bool = False
) -> int:
    """`amount` in major units of `currency` ("19.99" EUR -> 1999, "500" JPY -> 500).

    `InvalidInput` naming `field` and quoting the value for anything that is not a finite
    number (an empty string, "abc", NaN, infinity, a bool, None), for an amount above
    `MAX_MONEY` minor units ("1e300") and, unless `signed` (a platform that may write a
    discount either way), for a negative one: a price or a discount is never below 0."""
    if isinstance(amount, bool) or not isinstance(amount, str | int | float):
        raise InvalidInput.one(field, amount, "expected a decimal amount")
    try:
        value = Decimal(amount.strip() if isinstance(amount, str) else str(amount))
    except (InvalidOperation, ValueError):  # ValueError: an int too long to write out
        raise InvalidInput.one(field, amount, "expected a decimal amount") from None
    if not value.is_finite():
        raise InvalidInput.one(field, amount, "expected a finite amount")
    try:
        scaled = int(value.scaleb(exponent(currency)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    except (InvalidOperation, Overflow):
        raise InvalidInput.one(field, amount, f"must be at most {MAX_MONEY} minor units") from None
    if abs(scaled) > MAX_MONEY:
        raise InvalidInput.one(field, amount, f"must be at most {MAX_MONEY} minor units")
    if scaled < 0 and not signed:
        raise InvalidInput.one(field, amount, "must not be negative")
    return scaled


def unit_price(total: int, quantity: int) -> int:
    """The price of one unit, in minor units, of a line that costs `total` minor units for
    `quantity` units, rounded half up (a platform's line total need not divide evenly)."""
    return int((Decimal(total) / quantity).quantize(Decimal(1), rounding=ROUND_HALF_UP))
