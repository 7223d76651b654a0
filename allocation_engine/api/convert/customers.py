"""customers.proto <-> the customer account of `orders.model` (a reader/writer pair)."""

from __future__ import annotations

from allocation_engine.api.convert.common import (
    CUSTOMER_TYPES,
    DELIVERY_MODES,
    enum_from_proto,
    timestamp,
)
from allocation_engine.engine import CustomerType
from allocation_engine.errors import ProblemCollector
from allocation_engine.orders.model import Customer, DeliveryPreferences, PriceTerms
from allocation_engine.proto.allocation.v1 import common_pb2 as cpb
from allocation_engine.proto.allocation.v1 import customers_pb2 as kpb


def customer_from_proto(m: kpb.CustomerAccount) -> Customer:
    """The account a request sends; created_at is the server's to set, so it is not read."""
    problems = ProblemCollector()
    customer_type = enum_from_proto(
        CUSTOMER_TYPES, m.customer_type, "customer.customer_type", CustomerType.B2C, problems
    )
    mode = (
        None
        if m.delivery.mode == 0
        else enum_from_proto(
            DELIVERY_MODES, m.delivery.mode, "customer.delivery.mode", None, problems
        )
    )
    problems.raise_if_any()
    return Customer(
        id=m.id,
        email=m.email,
        name=m.name,
        language=m.language or "en",
        customer_type=customer_type or CustomerType.B2C,
        terms=PriceTerms(m.price_terms.payment_terms_days, m.price_terms.discount_basis_points),
        delivery=DeliveryPreferences(mode, m.delivery.pickup_store_id),
    )


def customer_to_proto(c: Customer) -> kpb.CustomerAccount:
    return kpb.CustomerAccount(
        id=c.id,
        email=c.email,
        name=c.name,
        language=c.language,
        customer_type=CUSTOMER_TYPES[c.customer_type],
        price_terms=kpb.PriceTerms(
            payment_terms_days=c.terms.payment_terms_days,
            discount_basis_points=c.terms.discount_basis_points,
        ),
        delivery=kpb.DeliveryPreferences(
            mode=(
                cpb.DELIVERY_MODE_UNSPECIFIED
                if c.delivery.mode is None
                else DELIVERY_MODES[c.delivery.mode]
            ),
            pickup_store_id=c.delivery.pickup_store_id,
        ),
        created_at=timestamp(c.created_at),
    )
