"""One order placed three ways on the same server, side by side: gRPC PlaceOrder, REST
`POST /v1/orders` (the same request as protobuf JSON) and a signed Shopify orders/create webhook
(verify, read the payload, map skus, geocode the postal code, place). Each is the same order
(two lines to a Munich postal code, the `marketplace-paid` workflow: held, captured, released;
the gRPC and REST orders under an app channel, since a platform's own channel takes orders only
from the platform), with a fresh external id every round, on `serve --demo` with its HTTP edge
and the in-memory store. What the three differ by is the edge's own cost.

`make bench` times 40 rounds each; under `make test` (benchmarks disabled) each runs once.
Nothing here asserts a speed.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import json_format
from pytest_benchmark.fixture import BenchmarkFixture

from allocation_engine.app.demo import demo_shop_order
from allocation_engine.app.orders import OrderConfig
from allocation_engine.app.serve import Running, ServeConfig, start
from allocation_engine.proto.allocation.v1 import orders_pb2 as opb
from allocation_engine.proto.allocation.v1 import orders_pb2_grpc as opb_grpc
from allocation_engine.testing.channel_peers.shopify import SKUS, ShopifyPeer

ROUNDS = 40
SHOP, APP = "shop-bench", "app-bench"
COUNTER = itertools.count(1)


@pytest.fixture(scope="module")
def shop() -> Iterator[ShopifyPeer]:
    peer = ShopifyPeer({}, client_secret="bench-webhook-secret").start()
    yield peer
    peer.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, shop: ShopifyPeer) -> Iterator[Running]:
    """`serve --demo` with two channels taking the same workflow: the Shopify shop (webhooks)
    and an app (PlaceOrder over gRPC or REST)."""
    folder: Path = tmp_path_factory.mktemp("channels-bench")
    skus = "\n".join(f'"{k}" = "{v}"' for k, v in SKUS.items())
    channels = folder / "channels.toml"
    channels.write_text(
        f'[[channel]]\nname = "{SHOP}"\nkind = "shopify"\nbase_url = "{shop.url}"\n'
        'workflow = "marketplace-paid"\n[channel.credentials]\n'
        'webhook_secret = "BENCH_SHOP_SECRET"\naccess_token = "BENCH_SHOP_TOKEN"\n'
        f"[channel.skus]\n{skus}\n\n"
        f'[[channel]]\nname = "{APP}"\nkind = "app"\nworkflow = "marketplace-paid"\n'
    )
    os.environ["BENCH_SHOP_SECRET"] = shop.client_secret
    os.environ["BENCH_SHOP_TOKEN"] = shop.access_token
    config = ServeConfig(
        port=0,
        http_port=0,
        demo=True,
        orders=OrderConfig(
            mail_dir=str(folder / "mail"), wms_dir=str(folder / "wms"), channels=str(channels)
        ),
    )
    running = start(config)
    yield running
    running.stop(1.0)
    for var in ("BENCH_SHOP_SECRET", "BENCH_SHOP_TOKEN"):
        os.environ.pop(var, None)


def shop_order() -> dict[str, Any]:
    order: dict[str, Any] = json.loads(demo_shop_order().read_text())
    order["id"] = 6_000_000_000 + next(COUNTER)
    return order


def place_request(order: dict[str, Any]) -> dict[str, Any]:
    """The same order as a PlaceOrderRequest in the protobuf JSON mapping."""
    a = order["shipping_address"]
    return {
        "channel": APP,
        "external_order_id": str(order["id"]),
        "customer": {"email": order["email"], "name": a["name"]},
        "lines": [
            {"sku": sku, "quantity": li["quantity"], "unit_price": 1490}
            for li, sku in zip(order["line_items"], ("SKU-0001", "SKU-0002"), strict=True)
        ],
        "currency": "EUR",
        "ship_to": {
            "latitude": 48.137,
            "longitude": 11.575,
            "country": "DE",
            "postal_code": "80331",
        },
        "address": {"name": a["name"], "street": a["address1"], "postal_code": a["zip"]}
        | {"city": a["city"], "country": "DE"},
    }


def test_place_order_over_grpc(server: Running, benchmark: BenchmarkFixture) -> None:
    """gRPC PlaceOrder, the order released to its node before the answer."""
    benchmark.group = "placing one order: gRPC vs REST vs webhook"
    with grpc.insecure_channel(server.address) as channel:
        stub = opb_grpc.OrderServiceStub(channel)

        def place() -> Any:
            request = json_format.ParseDict(place_request(shop_order()), opb.PlaceOrderRequest())
            return stub.PlaceOrder(request, timeout=10)

        answer = benchmark.pedantic(place, rounds=ROUNDS, warmup_rounds=2)
    assert answer.order.state == opb.ORDER_STATE_RELEASED


def test_place_order_over_rest(server: Running, benchmark: BenchmarkFixture) -> None:
    """REST POST /v1/orders with the same request as JSON."""
    benchmark.group = "placing one order: gRPC vs REST vs webhook"
    assert server.http is not None
    with httpx.Client(base_url=server.http.url) as client:

        def place() -> Any:
            return client.post("/v1/orders", json=place_request(shop_order())).json()

        answer = benchmark.pedantic(place, rounds=ROUNDS, warmup_rounds=2)
    assert answer["order"]["state"] == "ORDER_STATE_RELEASED"


def test_place_order_by_shopify_webhook(
    server: Running, shop: ShopifyPeer, benchmark: BenchmarkFixture
) -> None:
    """A signed orders/create webhook: verified, read, mapped, geocoded, placed."""
    benchmark.group = "placing one order: gRPC vs REST vs webhook"
    assert server.http is not None
    with httpx.Client(base_url=server.http.url) as client:

        def place() -> Any:
            body = json.dumps(shop_order()).encode()
            headers = {
                "Content-Type": "application/json",
                "X-Shopify-Topic": "orders/create",
                "X-Shopify-Hmac-Sha256": shop.sign(body),
                "X-Shopify-Webhook-Id": f"bench-{next(COUNTER)}",
            }
            return client.post(f"/webhooks/{SHOP}", content=body, headers=headers).json()

        answer = benchmark.pedantic(place, rounds=ROUNDS, warmup_rounds=2)
    assert answer["orders"][0]["state"] == "RELEASED"
