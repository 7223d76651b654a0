"""CustomerService over gRPC on a real server (in memory, and with its orders in a real Redis):
a CRM creates a B2B account with price terms and delivery preferences before any order, the
same upsert twice changes nothing, an update keeps created_at and moves the e-mail index, an
e-mail of another account is refused, and PlaceOrder finds the account the CRM made."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from allocation_engine.api.convert.customers import customer_from_proto, customer_to_proto
from allocation_engine.app.orders import OrderConfig
from allocation_engine.app.serve import Running, ServeConfig, start
from allocation_engine.engine import CustomerType
from allocation_engine.engine.order import DeliveryMode
from allocation_engine.orders.model import Customer, DeliveryPreferences, PriceTerms
from allocation_engine.proto.allocation.v1 import common_pb2 as cpb
from allocation_engine.proto.allocation.v1 import customers_pb2 as kpb
from allocation_engine.proto.allocation.v1 import customers_pb2_grpc as kpb_grpc
from allocation_engine.proto.allocation.v1 import orders_pb2 as opb
from allocation_engine.proto.allocation.v1 import orders_pb2_grpc as opb_grpc
from tests.support.grpc_inventory import COLOGNE


@pytest.fixture(params=["memory", "redis"])
def running(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Running]:
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    orders = OrderConfig(
        redis_url=url,
        mail_dir=str(tmp_path / "mail"),
        wms_dir=str(tmp_path / "wms"),
        dispatch=False,
    )
    server = start(ServeConfig(port=0, demo=True, redis_url=url, orders=orders))
    yield server
    server.stop(grace=0)


@pytest.fixture
def channel(running: Running) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(running.address) as open_channel:
        yield open_channel


def account(**changes: object) -> kpb.CustomerAccount:
    base: dict[str, object] = {
        "id": "CRM-1",
        "email": "Buyer@Example.com",
        "name": "Acme GmbH",
        "language": "de",
        "customer_type": cpb.CUSTOMER_TYPE_B2B,
        "price_terms": kpb.PriceTerms(payment_terms_days=30, discount_basis_points=250),
        "delivery": kpb.DeliveryPreferences(
            mode=cpb.DELIVERY_MODE_CLICK_AND_COLLECT, pickup_store_id="ST-MUC"
        ),
    }
    return kpb.CustomerAccount(**{**base, **changes})  # type: ignore[arg-type]


def test_an_account_is_created_read_and_upserted_idempotently(channel: grpc.Channel) -> None:
    """Given no account, when the CRM upserts one twice, then the first creates it, the second
    changes nothing, and GetCustomer by id and by e-mail answer it with its terms."""
    stub = kpb_grpc.CustomerServiceStub(channel)
    first = stub.UpsertCustomer(kpb.UpsertCustomerRequest(customer=account()))
    again = stub.UpsertCustomer(kpb.UpsertCustomerRequest(customer=account()))
    assert (first.created, first.changed) == (True, True)
    assert (again.created, again.changed) == (False, False)
    assert again.customer == first.customer
    assert first.customer.email == "buyer@example.com"
    by_id = stub.GetCustomer(kpb.GetCustomerRequest(id="CRM-1")).customer
    by_email = stub.GetCustomer(kpb.GetCustomerRequest(email="BUYER@example.com")).customer
    assert by_id == by_email == first.customer
    assert by_id.price_terms.discount_basis_points == 250
    assert by_id.delivery.pickup_store_id == "ST-MUC"


def test_an_update_keeps_created_at_and_moves_the_email(channel: grpc.Channel) -> None:
    """Given an account, when the CRM changes its e-mail and terms, then created_at stays, the
    new e-mail finds it and the old one no longer does."""
    stub = kpb_grpc.CustomerServiceStub(channel)
    first = stub.UpsertCustomer(kpb.UpsertCustomerRequest(customer=account())).customer
    changed = stub.UpsertCustomer(
        kpb.UpsertCustomerRequest(
            customer=account(
                email="orders@acme.example",
                price_terms=kpb.PriceTerms(payment_terms_days=60),
            )
        )
    )
    assert (changed.created, changed.changed) == (False, True)
    assert changed.customer.created_at == first.created_at
    assert stub.GetCustomer(kpb.GetCustomerRequest(email="orders@acme.example")).customer.id == (
        "CRM-1"
    )
    with pytest.raises(grpc.RpcError) as gone:
        stub.GetCustomer(kpb.GetCustomerRequest(email="buyer@example.com"))
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


def test_bad_accounts_are_refused_naming_each_field(channel: grpc.Channel) -> None:
    """Given an account with a bad e-mail, terms past their range and click & collect without
    a store, when upserted, then INVALID_ARGUMENT names each field, and nothing is stored; an
    e-mail another account has is refused too."""
    stub = kpb_grpc.CustomerServiceStub(channel)
    past = account(price_terms=kpb.PriceTerms(payment_terms_days=400, discount_basis_points=10_001))
    wrong = account(
        email="not-an-email",
        delivery=kpb.DeliveryPreferences(mode=cpb.DELIVERY_MODE_CLICK_AND_COLLECT),
    )
    for bad, names in (
        (past, ("price_terms.payment_terms_days=400", "price_terms.discount_basis_points=10001")),
        (wrong, ("customer.email='not-an-email'", "customer.delivery.pickup_store_id=''")),
    ):
        with pytest.raises(grpc.RpcError) as refused:
            stub.UpsertCustomer(kpb.UpsertCustomerRequest(customer=bad))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        for name in names:
            assert name in str(refused.value.details())
    with pytest.raises(grpc.RpcError) as missing:
        stub.GetCustomer(kpb.GetCustomerRequest(id="CRM-1"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    stub.UpsertCustomer(kpb.UpsertCustomerRequest(customer=account()))
    with pytest.raises(grpc.RpcError) as taken:
        stub.UpsertCustomer(kpb.UpsertCustomerRequest(customer=account(id="CRM-2")))
    assert taken.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "is the e-mail of customer CRM-1" in str(taken.value.details())


def test_an_order_of_the_account_finds_it(channel: grpc.Channel) -> None:
    """Given a B2B account the CRM made, when an order names its e-mail, then the order belongs
    to that account (no second account is made)."""
    kpb_grpc.CustomerServiceStub(channel).UpsertCustomer(
        kpb.UpsertCustomerRequest(customer=account(delivery=kpb.DeliveryPreferences()))
    )
    placed = opb_grpc.OrderServiceStub(channel).PlaceOrder(
        opb.PlaceOrderRequest(
            channel="web",
            external_order_id="w-1",
            customer=opb.CustomerRef(email="buyer@example.com"),
            customer_type=cpb.CUSTOMER_TYPE_B2B,
            lines=[opb.PricedLine(sku="SKU-0001", quantity=1, unit_price=1000)],
            ship_to=COLOGNE,
            address=opb.Address(
                name="Acme", street="Domplatz 1", postal_code="50667", city="Köln", country="DE"
            ),
        )
    )
    assert placed.order.customer_id == "CRM-1"


def test_an_account_round_trips_through_its_message() -> None:
    """Given an account with terms and preferences, when written to its message and read back,
    then it is the same account (created_at is the server's, so it is not read)."""
    account_in = Customer(
        "CRM-1",
        "ada@example.com",
        "Ada",
        "de",
        CustomerType.B2B,
        0.0,
        PriceTerms(30, 250),
        DeliveryPreferences(DeliveryMode.CLICK_AND_COLLECT, "ST-MUC"),
    )
    assert customer_from_proto(customer_to_proto(account_in)) == account_in
    plain = Customer("C-2", "b@example.com")
    assert customer_from_proto(customer_to_proto(plain)) == plain
