"""A server started with a CRM endpoint tells it of its orders: an order placed over gRPC
reaches a real local CRM endpoint, signed, through the server's own outbox dispatcher; a CRM
without a signing secret is refused at start."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest

from allocation_engine.app.orders import OrderConfig
from allocation_engine.app.serve import ServeConfig, start
from allocation_engine.errors import InvalidInput
from allocation_engine.proto.allocation.v1 import common_pb2 as cpb
from allocation_engine.proto.allocation.v1 import orders_pb2 as opb
from allocation_engine.proto.allocation.v1 import orders_pb2_grpc as opb_grpc
from allocation_engine.testing.crm_peer import CrmPeer
from tests.support.grpc_inventory import COLOGNE
from tests.support.orders import free_port


def test_a_served_order_reaches_the_crm(tmp_path: Path) -> None:
    """Given a demo server with a CRM endpoint, when an order of a new customer is placed, then
    the CRM receives its first event, order.placed, with the account it created."""
    crm = CrmPeer("s3cret", free_port()).start()
    orders = OrderConfig(
        mail_dir=str(tmp_path / "mail"),
        wms_dir=str(tmp_path / "wms"),
        crm_url=crm.url,
        crm_secret="s3cret",
        lease_seconds=1.0,
    )
    running = start(ServeConfig(port=0, demo=True, orders=orders))
    try:
        with grpc.insecure_channel(running.address) as channel:
            placed = opb_grpc.OrderServiceStub(channel).PlaceOrder(
                opb.PlaceOrderRequest(
                    channel="web",
                    external_order_id="w-1",
                    customer=opb.CustomerRef(email="ada@example.com"),
                    customer_type=cpb.CUSTOMER_TYPE_B2B,
                    lines=[opb.PricedLine(sku="SKU-0001", quantity=1, unit_price=1000)],
                    ship_to=COLOGNE,
                    address=opb.Address(
                        name="Ada",
                        street="Domplatz 1",
                        postal_code="50667",
                        city="Köln",
                        country="DE",
                    ),
                )
            )
        order_id = placed.order.id
        deadline = time.monotonic() + 15
        while f"crm:{order_id}/0" not in crm.messages and time.monotonic() < deadline:
            time.sleep(0.05)
        first = crm.messages[f"crm:{order_id}/0"]
        assert first["type"] == "order.placed"
        assert first["customer_created"]["email"] == "ada@example.com"
        assert crm.refused == 0
    finally:
        running.stop(grace=0)
        crm.stop()


def test_a_crm_without_a_secret_is_refused_at_start(tmp_path: Path) -> None:
    """Given a CRM URL and no secret, when the server starts, then it refuses, naming it."""
    orders = OrderConfig(mail_dir=str(tmp_path), wms_dir=str(tmp_path), crm_url="http://crm")
    with pytest.raises(InvalidInput, match="crm_url"):
        start(ServeConfig(port=0, orders=orders))
