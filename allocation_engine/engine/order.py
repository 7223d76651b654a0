"""A customer order as the allocator needs it: what, how many, where to, for whom."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from allocation_engine.engine.limits import MAX_SHIPMENTS, MAX_UNITS
from allocation_engine.engine.network import check_coordinates
from allocation_engine.errors import ProblemCollector

MAX_LINES = 200
"""Most lines one order may carry (the server refuses more before decoding: max_lines_per_order).

With at most 10^9 units per line (`limits.MAX_UNITS`) an order holds at most 2 x 10^11 units,
the figure the solver's int64 proof starts from (see `objective.py`)."""


class CustomerType(StrEnum):
    B2C = "B2C"
    B2B = "B2B"


class DeliveryMode(StrEnum):
    SHIP_TO_ADDRESS = "ship_to_address"
    CLICK_AND_COLLECT = "click_and_collect"  # picked up at `Order.pickup_store_id`


@dataclass(frozen=True)
class OrderLine:
    """One sku and its quantity. Lines sharing a `ship_group` leave together from one node."""

    sku: str
    quantity: int
    ship_group: str | None = None


@dataclass(frozen=True)
class ShipTo:
    latitude: float
    longitude: float
    country: str
    postal_code: str = ""


@dataclass(frozen=True)
class Order:
    """An order to source. Each sku appears on one line (merge repeated skus before sending).

    Each line holds 1 to 10^9 units (`limits.MAX_UNITS`); an order holds 1 to 200 lines
    (`MAX_LINES`). Bad fields are named from the order down (`id`, `lines[2].quantity`,
    `ship_to.latitude`); whoever holds the order under a name adds it
    (`InvalidInput.under("order.")`).

    `excluded_nodes` and `max_shipments` are this order's own fences on top of the rule set's:
    a reroute re-plans what a node rejected with that node excluded, and with only the
    shipments the rule set still allows once the ones already released are counted.
    `accepts_backorder` lets it wait for incoming supply even where the rules ship from the
    shelf only (the service plans it with backorders on: a workflow's last resort before
    holding the order).
    """

    id: str
    lines: tuple[OrderLine, ...]
    ship_to: ShipTo
    channel: str = "web"
    customer_type: CustomerType = CustomerType.B2C
    delivery_mode: DeliveryMode = DeliveryMode.SHIP_TO_ADDRESS
    pickup_store_id: str | None = None
    excluded_nodes: frozenset[str] = frozenset()
    max_shipments: int | None = None
    accepts_backorder: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "lines", tuple(self.lines))
        object.__setattr__(self, "excluded_nodes", frozenset(self.excluded_nodes))
        problems = ProblemCollector()
        if not isinstance(self.id, str) or not self.id:
            problems.add("id", self.id, "must be a non-empty string")
        if not self.lines:
            problems.add("lines", [], "an order needs at least one line")
        elif len(self.lines) > MAX_LINES:
            problems.add("lines", f"{len(self.lines)} lines", f"at most {MAX_LINES} lines")
        seen: dict[str, int] = {}
        for i, line in enumerate(self.lines):
            if not isinstance(line.sku, str) or not line.sku:
                problems.add(f"lines[{i}].sku", line.sku, "must be a non-empty string")
            elif line.sku in seen:
                problems.add(
                    f"lines[{i}].sku", line.sku, f"repeats lines[{seen[line.sku]}]; merge them"
                )
            else:
                seen[line.sku] = i
            if (
                not isinstance(line.quantity, int)
                or isinstance(line.quantity, bool)
                or not 0 < line.quantity <= MAX_UNITS
            ):
                problems.add(
                    f"lines[{i}].quantity", line.quantity, f"must be an integer in [1, {MAX_UNITS}]"
                )
        check_coordinates(self.ship_to.latitude, self.ship_to.longitude, problems, "ship_to.")
        if not self.ship_to.country:
            problems.add("ship_to.country", self.ship_to.country, "must be an ISO country code")
        if not isinstance(self.customer_type, CustomerType):
            problems.add("customer_type", self.customer_type, "must be B2C or B2B")
        if not isinstance(self.delivery_mode, DeliveryMode):
            problems.add("delivery_mode", self.delivery_mode, "unknown delivery mode")
        if self.delivery_mode is DeliveryMode.CLICK_AND_COLLECT and not self.pickup_store_id:
            problems.add(
                "pickup_store_id", self.pickup_store_id, "click & collect needs a pickup store"
            )
        if self.max_shipments is not None and (
            not isinstance(self.max_shipments, int)
            or isinstance(self.max_shipments, bool)
            or not 1 <= self.max_shipments <= MAX_SHIPMENTS
        ):
            problems.add(
                "max_shipments", self.max_shipments, f"must be an integer in [1, {MAX_SHIPMENTS}]"
            )
        if not isinstance(self.accepts_backorder, bool):
            problems.add("accepts_backorder", self.accepts_backorder, "must be true or false")
        for node_id in sorted(map(str, self.excluded_nodes)):
            if not node_id:
                problems.add("excluded_nodes", node_id, "node ids must be non-empty")
        problems.raise_if_any()

    @property
    def skus(self) -> tuple[str, ...]:
        return tuple(line.sku for line in self.lines)

    @property
    def units(self) -> int:
        return sum(line.quantity for line in self.lines)
