"""The embedded demo: a German network of 4 warehouses, 30 stores and 5 drop-ship suppliers
with a few hundred skus, generated from a fixed seed so every run (and every test) sees the same.
"""

from __future__ import annotations

import json
from importlib import resources
from importlib.resources.abc import Traversable

import numpy as np

from allocation_engine.engine import Inventory, InventoryPosition, Network, Node, NodeType
from allocation_engine.ports.channels import ChannelSettings
from allocation_engine.service.channels.config import Channels
from allocation_engine.testing.channel_peers.shopify import SKUS, ShopifyPeer

# (name, latitude, longitude): the 30 largest German cities host a store each.
CITIES = (
    ("Berlin", 52.5200, 13.4050),
    ("Hamburg", 53.5511, 9.9937),
    ("Munich", 48.1351, 11.5820),
    ("Cologne", 50.9375, 6.9603),
    ("Frankfurt", 50.1109, 8.6821),
    ("Stuttgart", 48.7758, 9.1829),
    ("Dusseldorf", 51.2277, 6.7735),
    ("Leipzig", 51.3397, 12.3731),
    ("Dortmund", 51.5136, 7.4653),
    ("Essen", 51.4556, 7.0116),
    ("Bremen", 53.0793, 8.8017),
    ("Dresden", 51.0504, 13.7373),
    ("Hanover", 52.3759, 9.7320),
    ("Nuremberg", 49.4521, 11.0767),
    ("Duisburg", 51.4344, 6.7623),
    ("Bochum", 51.4818, 7.2162),
    ("Wuppertal", 51.2562, 7.1508),
    ("Bielefeld", 52.0302, 8.5325),
    ("Bonn", 50.7374, 7.0982),
    ("Munster", 51.9607, 7.6261),
    ("Mannheim", 49.4875, 8.4660),
    ("Karlsruhe", 49.0069, 8.4037),
    ("Augsburg", 48.3705, 10.8978),
    ("Wiesbaden", 50.0782, 8.2398),
    ("Monchengladbach", 51.1805, 6.4428),
    ("Gelsenkirchen", 51.5177, 7.0857),
    ("Aachen", 50.7753, 6.0839),
    ("Braunschweig", 52.2689, 10.5268),
    ("Kiel", 54.3233, 10.1228),
    ("Chemnitz", 50.8278, 12.9214),
)
WAREHOUSES = (
    ("WH-HAMBURG", 53.47, 10.05),
    ("WH-DORTMUND", 51.53, 7.55),
    ("WH-LEIPZIG", 51.42, 12.23),
    ("WH-NUREMBERG", 49.42, 11.12),
)
SUPPLIERS = (
    ("SUP-STUTTGART", 48.80, 9.20),
    ("SUP-HANOVER", 52.40, 9.70),
    ("SUP-COLOGNE", 50.95, 6.90),
    ("SUP-MUNICH", 48.10, 11.50),
    ("SUP-DRESDEN", 51.05, 13.70),
)
SKU_COUNT = 300


def demo_network() -> Network:
    nodes = [
        Node(i, NodeType.WAREHOUSE, lat, lon, "DE", capacity=5000) for i, lat, lon in WAREHOUSES
    ]
    nodes += [
        Node(
            f"ST-{name.upper()}",
            NodeType.STORE,
            lat,
            lon,
            "DE",
            ships_to=frozenset({"DE"}),
            unit_handling_cost=0.25,
            capacity=40,
        )
        for name, lat, lon in CITIES
    ]
    nodes += [
        Node(i, NodeType.SUPPLIER, lat, lon, "DE", shipment_surcharge=1.5)
        for i, lat, lon in SUPPLIERS
    ]
    return Network.of(nodes)


def demo_skus() -> list[str]:
    return [f"SKU-{i:04d}" for i in range(1, SKU_COUNT + 1)]


def demo_positions(network: Network, seed: int = 7) -> list[InventoryPosition]:
    """Warehouses carry most skus deeply, stores a thin slice, suppliers a narrow range each."""
    rng = np.random.default_rng(seed)
    skus = demo_skus()
    positions = []
    for node in network.nodes:
        if node.type is NodeType.WAREHOUSE:
            carried, depth = rng.random(len(skus)) < 0.8, (20, 200)
        elif node.type is NodeType.STORE:
            carried, depth = rng.random(len(skus)) < 0.15, (1, 6)
        else:
            carried, depth = rng.random(len(skus)) < 0.1, (50, 500)
        for j in np.flatnonzero(carried):
            on_hand = int(rng.integers(*depth))
            safety = 1 if node.type is NodeType.STORE and on_hand > 2 else 0
            positions.append(InventoryPosition(node.id, skus[j], on_hand, 0, safety))
    return positions


def demo_inventory(network: Network | None = None) -> Inventory:
    network = network or demo_network()
    return Inventory.from_positions(network, demo_positions(network))


DEMO_SHOP = "shopify-demo"
DEMO_SHOP_SECRETS = {
    "DEMO_SHOPIFY_WEBHOOK_SECRET": "demo-webhook-secret",
    "DEMO_SHOPIFY_ACCESS_TOKEN": "shpat_demo",
}
"""The demo shop's secrets: known, so the README's curl can sign a webhook; demo only."""


def demo_shop_order() -> Traversable:
    """The demo shop's order, as its `orders/create` webhook carries it (README: replay it)."""
    return resources.files("allocation_engine.data").joinpath("demo/shopify-order.json")


def demo_shop() -> tuple[ShopifyPeer, Channels, dict[str, str]]:
    """A local test peer playing a Shopify shop that has taken the demo order (it takes the
    fulfillments the outbox sends back), the channel that connects it, and the secrets that
    channel's variables hold."""
    peer = ShopifyPeer(
        {},
        client_secret=DEMO_SHOP_SECRETS["DEMO_SHOPIFY_WEBHOOK_SECRET"],
        access_token=DEMO_SHOP_SECRETS["DEMO_SHOPIFY_ACCESS_TOKEN"],
    ).start()
    peer.take(json.loads(demo_shop_order().read_text()))
    settings = ChannelSettings(
        name=DEMO_SHOP,
        kind="shopify",
        base_url=peer.url,
        workflow="marketplace-paid",  # the shop's checkout took the money
        skus=dict(SKUS),
        credentials={
            "webhook_secret": "DEMO_SHOPIFY_WEBHOOK_SECRET",
            "access_token": "DEMO_SHOPIFY_ACCESS_TOKEN",
        },
    )
    return peer, Channels((settings,)), dict(DEMO_SHOP_SECRETS)
