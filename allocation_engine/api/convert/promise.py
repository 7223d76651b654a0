"""Protobuf <-> domain for `promise.proto`: a cart in, delivery options out.

The cart reuses the order's line and ship-to readers (`common`), so its fields are named as the
request names them (`lines[0].sku`, `ship_to.latitude`). Options only leave the server; dates go
out as ISO 8601 days, an unavailable option with no dates and no packages.
"""

from __future__ import annotations

from datetime import date

from allocation_engine.api.convert.common import (
    CUSTOMER_TYPES,
    DELIVERY_MODES,
    enum_from_proto,
    shortfall_to_proto,
    timestamp,
)
from allocation_engine.engine import CustomerType, OrderLine, ShipTo
from allocation_engine.errors import ProblemCollector
from allocation_engine.proto.allocation.v1 import allocation_pb2 as apb
from allocation_engine.proto.allocation.v1 import promise_pb2 as ppb
from allocation_engine.service.promise import (
    DEFAULT_PICKUP_STORES,
    Cart,
    DeliveryOption,
    DeliveryOptions,
    Readiness,
)

_READINESS = {
    Readiness.NONE: ppb.READINESS_UNSPECIFIED,
    Readiness.READY_NOW: ppb.READINESS_READY_NOW,
    Readiness.READY_BY: ppb.READINESS_READY_BY,
}


def cart_from_proto(message: ppb.GetDeliveryOptionsRequest) -> Cart:
    """The cart of a request, or InvalidInput naming the request's bad fields."""
    problems = ProblemCollector()
    if not message.HasField("ship_to"):
        problems.add("ship_to", None, "is required")
    customer = enum_from_proto(
        CUSTOMER_TYPES, message.customer_type, "customer_type", CustomerType.B2C, problems
    )
    problems.raise_if_any()
    return Cart(
        lines=tuple(
            OrderLine(line.sku, line.quantity, line.ship_group or None) for line in message.lines
        ),
        ship_to=ShipTo(
            message.ship_to.latitude,
            message.ship_to.longitude,
            message.ship_to.country,
            message.ship_to.postal_code,
        ),
        channel=message.channel or "web",
        customer_type=customer or CustomerType.B2C,
        pickup_stores=(
            message.pickup_stores if message.HasField("pickup_stores") else DEFAULT_PICKUP_STORES
        ),
    )


def options_to_proto(options: DeliveryOptions) -> ppb.GetDeliveryOptionsResponse:
    return ppb.GetDeliveryOptionsResponse(
        home_delivery=option_to_proto(options.home),
        click_and_collect=[option_to_proto(o) for o in options.click_and_collect],
        read_at=timestamp(options.read_at),
        network_version=options.network_version,
        rules_revision=options.rules_revision,
        today=options.today.isoformat(),
    )


def option_to_proto(option: DeliveryOption) -> ppb.DeliveryOption:
    return ppb.DeliveryOption(
        mode=DELIVERY_MODES[option.mode],
        pickup_store_id=option.pickup_store_id,
        store_distance_km=option.store_distance_km,
        available=option.available,
        total_cost=option.plan.total_cost if option.available else 0.0,
        packages=[
            ppb.PromisedPackage(
                node_id=p.shipment.node_id,
                lines=[
                    apb.ShipmentLine(sku=line.sku, quantity=line.quantity)
                    for line in p.shipment.lines
                ],
                distance_km=p.shipment.distance_km,
                cost=p.shipment.cost,
                transfer_to=p.shipment.transfer_to,
                ship_date=p.ship_date.isoformat(),
                arrival_date=p.arrival_date.isoformat(),
            )
            for p in option.packages
        ],
        ship_date=_day(option.ship_date),
        ready_date=_day(option.ready_date),
        readiness=_READINESS[option.readiness],
        shortfalls=[shortfall_to_proto(s) for s in option.shortfalls],
        rules_name=option.plan.rules_name,
        rules_version=option.plan.rules_version,
    )


def _day(day: date | None) -> str:
    return "" if day is None else day.isoformat()
