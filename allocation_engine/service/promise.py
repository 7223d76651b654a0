"""Delivery options at checkout: what a shop may promise for a cart before the order exists.

`Promises.options` plans the cart the way Allocate would plan each order it could become: once
as a home delivery (SHIP_TO_ADDRESS to the ship-to), and once as click & collect at each of the
nearest active stores of the network (great-circle from the ship-to, nearest first). Every
option is planned as `Planner.plan` plans that order, on one stock read for the whole cart
(`Planner.snapshot`: the same stock view, published rules and channel fences as Allocate), so
what it offers is what Reserve of that order then grants while the stock does not move, and
the options of one answer agree with each other. Nothing is held.

Dates. A package leaves on today (the planner's UTC day, from the clock port: day 0 of incoming
lots too) plus its shipment's `ship_day` (0 from the shelf, later when the plan takes incoming
supply) and travels `transit_days(distance_km)`: the same model for a parcel to the customer and
for a transfer to a pickup store. A click & collect
option is "ready now" when the store's own shelf covers the whole cart today (no transfer, no
supply to wait for), else ready on the day its last package arrives at the store.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, timedelta
from enum import StrEnum

import numpy as np

from allocation_engine.engine import (
    CustomerType,
    DeliveryMode,
    InvalidInput,
    Network,
    NodeType,
    Order,
    OrderLine,
    Plan,
    Shipment,
    ShipTo,
    Shortfall,
    Status,
)
from allocation_engine.engine.geo import haversine_km
from allocation_engine.engine.network import NODE_TYPES
from allocation_engine.errors import FieldProblem, ProblemCollector
from allocation_engine.service.deadline import Deadline
from allocation_engine.service.planner import Planner, Snapshot

TRANSIT_KM_PER_DAY = 500.0
"""How far a parcel travels per day: a road parcel network's overnight line haul (hub to hub)
covers about 500 km, so a package goes one day further per 500 km, started or not."""

HANDOVER_DAYS = 1
"""Days added to every package for the carrier's collection and last-mile sorting: even a parcel
across town arrives the day after it leaves (a next-day service)."""

DEFAULT_PICKUP_STORES = 3
"""Stores offered for click & collect when the request does not say: a checkout shows a few."""

MAX_PICKUP_STORES = 10
"""Most stores one request may ask for: each is a plan of its own, so this bounds the work."""

CHECKOUT_ORDER_ID = "checkout"
"""The order id the options are planned under (the order does not exist yet)."""

STORE = NODE_TYPES.index(NodeType.STORE)


def transit_days(distance_km: float) -> int:
    """Days from leaving the node to arriving: ceil(distance / 500 km) + 1 (see the constants)."""
    return math.ceil(distance_km / TRANSIT_KM_PER_DAY) + HANDOVER_DAYS


class Readiness(StrEnum):
    NONE = "none"  # home delivery, or an option that cannot be filled
    READY_NOW = "ready_now"  # the store's own shelf covers the cart today
    READY_BY = "ready_by"  # ready on `ready_date`, when the last package reaches the store


@dataclass(frozen=True)
class Cart:
    """What a checkout knows before the order exists. Bad fields are named as the request
    names them (`lines[0].quantity`, `ship_to.latitude`, `pickup_stores`)."""

    lines: tuple[OrderLine, ...]
    ship_to: ShipTo
    channel: str = "web"
    customer_type: CustomerType = CustomerType.B2C
    pickup_stores: int = DEFAULT_PICKUP_STORES

    def order(self) -> Order:
        """The cart as a home-delivery order (validated: InvalidInput naming every bad field)."""
        problems = ProblemCollector()
        if (
            not isinstance(self.pickup_stores, int)
            or isinstance(self.pickup_stores, bool)
            or not 0 <= self.pickup_stores <= MAX_PICKUP_STORES
        ):
            problems.add(
                "pickup_stores",
                self.pickup_stores,
                f"must be an integer in [0, {MAX_PICKUP_STORES}]",
            )
        try:
            order = Order(
                id=CHECKOUT_ORDER_ID,
                lines=self.lines,
                ship_to=self.ship_to,
                channel=self.channel,
                customer_type=self.customer_type,
            )
        except InvalidInput as bad:
            problems.extend(bad.problems)
        problems.raise_if_any()
        return order


@dataclass(frozen=True)
class PromisedPackage:
    """One package of an option's plan, with the day it leaves and the day it arrives (at the
    customer, or at the pickup store; the store's own stock arrives the day it is ready)."""

    shipment: Shipment
    ship_date: date
    arrival_date: date


@dataclass(frozen=True)
class DeliveryOption:
    """One way to deliver the cart: its plan (as Allocate answers it) and what that promises.

    `available` when the plan fills every unit; otherwise `shortfalls` names each short sku
    (requested against what this option can give) and no package or date is promised."""

    mode: DeliveryMode
    plan: Plan
    packages: tuple[PromisedPackage, ...] = ()
    shortfalls: tuple[Shortfall, ...] = ()
    pickup_store_id: str = ""
    store_distance_km: float = 0.0

    @property
    def available(self) -> bool:
        return self.plan.status is not Status.INFEASIBLE and not self.plan.unfilled

    @property
    def ship_date(self) -> date | None:
        """The day the last package leaves (None when not available)."""
        return max((p.ship_date for p in self.packages), default=None)

    @property
    def ready_date(self) -> date | None:
        """Home delivery: the day the last package arrives; click & collect: pickup."""
        return max((p.arrival_date for p in self.packages), default=None)

    @property
    def readiness(self) -> Readiness:
        if self.mode is not DeliveryMode.CLICK_AND_COLLECT or not self.available:
            return Readiness.NONE
        own_shelf = all(
            p.shipment.node_id == self.pickup_store_id and p.shipment.ship_day == 0
            for p in self.packages
        )
        return Readiness.READY_NOW if own_shelf else Readiness.READY_BY


@dataclass(frozen=True)
class DeliveryOptions:
    """Every option for one cart, and what they were read from: the time of the read, the
    network version and the published rules revision (0 = the server's default rules)."""

    home: DeliveryOption
    click_and_collect: tuple[DeliveryOption, ...]
    read_at: float
    network_version: int
    rules_revision: int
    today: date


class Promises:
    def __init__(self, planner: Planner) -> None:
        self._planner = planner

    def options(self, cart: Cart, deadline: Deadline | None = None) -> DeliveryOptions:
        """Home delivery and click & collect at the `cart.pickup_stores` nearest active stores.

        Raises InvalidInput naming the request's fields (`lines[1].sku` for an unknown sku)."""
        order = cart.order()
        read_at, today = self._planner.now(), self._planner.today()
        view = self._planner.snapshot(order.skus)
        versions, network = view.read, view.network
        with _named_from_cart():
            home = self._option(view, order, today, deadline)
            stores = [
                self._option(
                    view,
                    replace(
                        order,
                        delivery_mode=DeliveryMode.CLICK_AND_COLLECT,
                        pickup_store_id=store_id,
                    ),
                    today,
                    deadline,
                    distance,
                )
                for store_id, distance in nearest_stores(network, cart.ship_to, cart.pickup_stores)
            ]
        return DeliveryOptions(
            home=home,
            click_and_collect=tuple(stores),
            read_at=read_at,
            network_version=versions.nodes_version,
            rules_revision=versions.rules_revision,
            today=today,
        )

    def _option(
        self,
        view: Snapshot,
        order: Order,
        today: date,
        deadline: Deadline | None,
        store_km: float = 0.0,
    ) -> DeliveryOption:
        plan = self._planner.plan_on(view, order, deadline)
        store_id = order.pickup_store_id or ""
        option = DeliveryOption(order.delivery_mode, plan, (), (), store_id, store_km)
        if not option.available:
            return replace(option, shortfalls=_shortfalls(order, plan))
        packages = tuple(_promised(s, today, s.node_id == store_id) for s in plan.shipments)
        return replace(option, packages=packages)


def nearest_stores(network: Network, ship_to: ShipTo, k: int) -> list[tuple[str, float]]:
    """The `k` nearest active stores to `ship_to` (great-circle), nearest first, with their
    distance in km; ties by node id (the network's order)."""
    if k <= 0:
        return []
    stores = np.flatnonzero((network.type_code == STORE) & network.active)
    if not len(stores):
        return []
    distance = haversine_km(
        network.latitude[stores], network.longitude[stores], ship_to.latitude, ship_to.longitude
    )
    chosen = np.argsort(distance, kind="stable")[:k]
    return [(network.nodes[int(stores[i])].id, float(distance[i])) for i in chosen]


def _promised(shipment: Shipment, today: date, at_pickup_store: bool) -> PromisedPackage:
    """The package's dates; the pickup store's own stock travels nowhere."""
    leaves = today + timedelta(days=shipment.ship_day)
    travel = 0 if at_pickup_store else transit_days(shipment.distance_km)
    return PromisedPackage(shipment, leaves, leaves + timedelta(days=travel))


def _shortfalls(order: Order, plan: Plan) -> tuple[Shortfall, ...]:
    """What an unavailable option is short of: the engine's shortfalls, or (under partial
    fulfilment) each unfilled line as requested against what the plan ships of it."""
    if plan.status is Status.INFEASIBLE:
        return plan.shortfalls
    wanted = {line.sku: line.quantity for line in order.lines}
    return tuple(Shortfall(u.sku, wanted[u.sku], wanted[u.sku] - u.quantity) for u in plan.unfilled)


@contextmanager
def _named_from_cart() -> Iterator[None]:
    """The planner names the order's fields under `order.`; the request has them at the top."""
    try:
        yield
    except InvalidInput as bad:
        raise InvalidInput(
            [FieldProblem(p.field.removeprefix("order."), p.value, p.problem) for p in bad.problems]
        ) from None
