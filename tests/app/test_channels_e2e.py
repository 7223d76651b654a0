"""End to end, per sales platform, over real HTTP: a server process with its HTTP edge on a free
port, a real redis-server, and the platform's local peer (the only stand-in: the platforms
cannot be reached) speaking its real wire format.

For every platform: the sample order arrives (a signed webhook to the edge, or an order the
importer polls), is placed, allocated and released to the warehouse (a pick list in the node's
folder), shipped (RecordShipment over gRPC), and the platform's peer receives the shipment
confirmation with the carrier, the tracking number and the lines in its own format. Delivering
or polling the same order again places nothing twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from allocation_engine.adapters.redis.cursors import RedisCursors
from allocation_engine.app.orders import OrderConfig
from allocation_engine.app.serve import Running, ServeConfig, start
from allocation_engine.orders.model import OrderRecord
from allocation_engine.proto.allocation.v1 import orders_pb2 as opb
from allocation_engine.proto.allocation.v1 import orders_pb2_grpc as opb_grpc
from allocation_engine.testing.channel_peers import PlatformPeer
from allocation_engine.testing.channel_peers.aliexpress import AliExpressPeer
from allocation_engine.testing.channel_peers.amazon import AmazonPeer
from allocation_engine.testing.channel_peers.bigcommerce import BigCommercePeer
from allocation_engine.testing.channel_peers.ebay import EbayPeer
from allocation_engine.testing.channel_peers.magento import MagentoPeer
from allocation_engine.testing.channel_peers.shopify import ShopifyPeer
from allocation_engine.testing.channel_peers.shopware import ShopwarePeer

pytestmark = pytest.mark.redis

DATA = Path(__file__).parent.parent / "data" / "channels"

PLATFORMS: dict[str, tuple[Callable[[dict[str, Any]], PlatformPeer], str]] = {
    "shopify": (ShopifyPeer, "orders-create.json"),
    "shopware": (ShopwarePeer, "order_placed_b2c.json"),
    "bigcommerce": (BigCommercePeer, "order_created_b2c.json"),
    "magento": (MagentoPeer, "order_b2c.json"),
    "amazon": (AmazonPeer, "order_b2c.json"),
    "ebay": (EbayPeer, "order_b2c.json"),
    "aliexpress": (AliExpressPeer, "order_info_b2c.json"),
}


def sample(kind: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / kind / PLATFORMS[kind][1]).read_text())
    return data


def channels_toml(kind: str, peer: PlatformPeer, env: dict[str, str], poll_seconds: int) -> str:
    """The channel file connecting `peer`, its secrets named by environment variable."""
    lines = [
        "[[channel]]",
        f'name = "{kind}-e2e"',
        f'kind = "{kind}"',
        f'base_url = "{peer.url}"',
        'workflow = "marketplace-paid"',
        f"poll_seconds = {poll_seconds}",
        "[channel.credentials]",
        *(f'{role} = "{var}"' for role, var in env.items()),
        "[channel.skus]",
        *(f"{json.dumps(theirs)} = {json.dumps(ours)}" for theirs, ours in peer.skus().items()),
        "[channel.options]",
        *(f"{name} = {toml_value(value)}" for name, value in peer.options().items()),
    ]
    return "\n".join(lines) + "\n"


def toml_value(value: Any) -> str:
    """`value` as a TOML value (strings, numbers, booleans, lists, inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(str(value))


class Platform:
    """A server connected to one platform's peer."""

    def __init__(
        self, kind: str, running: Running, peer: PlatformPeer, wms: Path, redis_url: str
    ) -> None:
        self.kind, self.running, self.peer, self.wms = kind, running, peer, wms
        self.redis_url = redis_url
        self.channel = f"{kind}-e2e"
        assert running.http is not None
        self.url = running.http.url
        self.grpc = grpc.insecure_channel(running.address)
        self.orders = opb_grpc.OrderServiceStub(self.grpc)

    @property
    def polled(self) -> bool:
        return self.channel in self.running.orders.connected.importers

    def bring_in(self) -> str:
        """The platform takes its sample order and we get it (webhook, or a poll now)."""
        external_id = self.peer.new_order(self.url, self.channel)
        if self.polled:
            answer = httpx.post(f"{self.url}/v1/channels/{self.channel}/poll")
            assert answer.status_code == 200, answer.text
        return external_id

    def again(self) -> None:
        """The same order arrives again: the webhook delivered once more, or, for a polled
        platform, the cursor lost (as if the store forgot it) and the listing read again."""
        if self.polled:
            RedisCursors.from_url(self.redis_url).advance(self.channel, "")
            answer = httpx.post(f"{self.url}/v1/channels/{self.channel}/poll")
            assert answer.status_code == 200, answer.text
            assert not any(o["created"] for o in answer.json()["orders"])
        else:
            self.peer.new_order(self.url, self.channel)

    def ship_all(self, record: OrderRecord, tracking: str) -> None:
        """Records every parcel of `record` as shipped with DHL, tracking numbers from the
        `tracking` template (`{i}` the parcel's index)."""
        for i, shipment in enumerate(record.shipments):
            self.orders.RecordShipment(
                opb.RecordShipmentRequest(
                    order_id=record.id,
                    shipment_id=shipment.id,
                    carrier="DHL",
                    tracking_number=tracking.format(i=i),
                    idempotency_key=f"ship-{shipment.id}",
                )
            )

    def order(self, external_id: str) -> OrderRecord:
        store = self.running.orders.store
        found = store.find_external(self.channel, external_id)
        assert found is not None, f"no order for {self.channel}/{external_id}"
        return store.load(found)


@contextmanager
def connected(
    kind: str,
    redis_url: str,
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    poll_seconds: int = 3600,
) -> Iterator[Platform]:
    """A server on Redis with its HTTP edge, connected to a fresh peer of platform `kind`."""
    peer = PLATFORMS[kind][0](sample(kind)).start()
    env = {}
    for role, value in peer.secrets().items():
        var = f"E2E_{kind}_{role}".upper()
        monkeypatch.setenv(var, value)
        env[role] = var
    path = folder / "channels.toml"
    path.write_text(channels_toml(kind, peer, env, poll_seconds))
    config = ServeConfig(
        port=0,
        http_port=0,
        redis_url=redis_url,
        demo=True,
        orders=OrderConfig(
            redis_url=redis_url,
            channels=str(path),
            mail_dir=str(folder / "mail"),
            wms_dir=str(folder / "wms"),
            lease_seconds=1.0,
        ),
    )
    running = start(config)
    try:
        yield Platform(kind, running, peer, folder / "wms", redis_url)
    finally:
        running.stop(1.0)
        peer.stop()


@pytest.fixture(params=sorted(PLATFORMS))
def platform(
    request: pytest.FixtureRequest,
    redis_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Platform]:
    with connected(request.param, redis_url, tmp_path, monkeypatch) as running:
        yield running


def wait_for(check: Callable[[], Any], seconds: float = 15.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_an_order_comes_in_ships_and_the_platform_hears_of_it(platform: Platform) -> None:
    """Given a server connected to the platform's peer, when the platform takes its sample
    order, then one order is placed, allocated and released to the WMS; when each parcel is
    recorded as shipped, the platform receives one confirmation per parcel with our carrier and
    tracking number and the lines by its own skus, and the timeline shows each confirmation
    sent; and the same order arriving again (the
    webhook delivered twice, a poll from a lost cursor) places nothing new."""
    external_id = platform.bring_in()
    record = platform.order(external_id)
    assert record.state.value == "RELEASED", record.state
    assert record.workflow == "marketplace-paid"
    assert record.shipments
    for shipment in record.shipments:
        pick_list = platform.wms / shipment.node_id / f"{shipment.id}.json"
        assert wait_for(pick_list.exists), f"no pick list for {shipment.id}"

    platform.ship_all(record, "00340434{i:012d}")
    shipped: dict[str, int] = {}
    for shipment in record.shipments:
        for line in shipment.lines:
            shipped[line.sku] = shipped.get(line.sku, 0) + line.quantity

    confirmations = wait_for(
        lambda: (
            (c := platform.peer.confirmations(external_id))
            and len(c) == len(record.shipments)
            and c
        )
    )
    assert confirmations, f"{platform.kind}: no confirmation reached the peer"
    numbers = sorted(c["tracking_number"] for c in confirmations)
    assert numbers == sorted(f"00340434{i:012d}" for i in range(len(record.shipments)))
    theirs: dict[str, int] = {}
    for confirmation in confirmations:
        assert "DHL" in json.dumps(confirmation["raw"]).upper() or confirmation["carrier"]
        for sku, quantity in confirmation["lines"].items():
            theirs[sku] = theirs.get(sku, 0) + quantity
    ours = platform.peer.skus()
    assert {ours[sku]: q for sku, q in theirs.items()} == shipped
    timeline = platform.orders.GetOrder(opb.GetOrderRequest(order_id=record.id)).timeline
    told = [e.delivery for e in timeline if e.type == "shipment.shipped"]
    assert wait_for(
        lambda: all(
            e.delivery == "sent"
            for e in platform.orders.GetOrder(opb.GetOrderRequest(order_id=record.id)).timeline
            if e.type == "shipment.shipped"
        )
    ), told  # customer service sees each confirmation as sent

    platform.again()
    assert platform.order(external_id).id == record.id
    listed = platform.orders.ListOrders(opb.ListOrdersRequest(customer_id=record.customer_id))
    assert [o.id for o in listed.orders] == [record.id]
    time.sleep(0.5)  # the outbox had its chance to send anything twice
    assert len(platform.peer.confirmations(external_id)) == len(record.shipments)


@pytest.mark.parametrize("kind", ["magento", "amazon", "ebay", "aliexpress"])
def test_the_pollers_import_on_the_channels_schedule(
    kind: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a polled channel polling every second, when the platform takes an order, then the
    server's own poller places it without anyone asking, once."""
    with connected(kind, redis_url, tmp_path, monkeypatch, poll_seconds=1) as platform:
        external_id = platform.peer.new_order(platform.url, platform.channel)
        store = platform.running.orders.store
        assert wait_for(lambda: store.find_external(platform.channel, external_id))
        time.sleep(1.5)  # another turn of the poller: nothing new
        assert len(store.list_orders(None, None, 0, 10)) == 1


def test_a_confirmation_refused_for_a_rotated_token_is_sent_once_it_is_fixed(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a shop whose access token was rotated (it answers 401), when a parcel ships, then
    the confirmation is not given up: once the token is good again, it arrives, once."""
    with connected("shopify", redis_url, tmp_path, monkeypatch) as platform:
        assert isinstance(platform.peer, ShopifyPeer)
        external_id = platform.bring_in()
        record = platform.order(external_id)
        token, platform.peer.access_token = platform.peer.access_token, "rotated"
        platform.ship_all(record, "ROT{i}")
        assert wait_for(lambda: platform.peer.received("GET", r"/orders/\d+\.json$"), 10)
        time.sleep(1.5)  # refused at least once, past a lease
        assert platform.peer.confirmations(external_id) == []
        platform.peer.access_token = token
        assert wait_for(
            lambda: len(platform.peer.confirmations(external_id)) == len(record.shipments), 20
        )
        time.sleep(1.5)
        assert len(platform.peer.confirmations(external_id)) == len(record.shipments)
