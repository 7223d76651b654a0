"""Sales channels as data and the intake around every platform: a channel file validated with
every problem named, a platform's order mapped to PlaceOrder (skus by the table, the ship-to
geocoded by postal code, B2B, the channel's workflow and node types), polls that move the cursor
only past placed orders, and webhooks that place once whatever the redeliveries."""

from __future__ import annotations

from pathlib import Path

import pytest

from allocation_engine.adapters.geo.postal_codes import PostalCodeTable
from allocation_engine.adapters.memory.cursors import MemoryCursors
from allocation_engine.app.channels import platform_specs, resolve_secrets
from allocation_engine.cli.main import main
from allocation_engine.engine import NodeType, default_rules
from allocation_engine.engine.order import CustomerType, DeliveryMode
from allocation_engine.errors import BadSignature, InvalidInput, PeerUnavailable
from allocation_engine.ports.channels import (
    ChannelAddress,
    ChannelLine,
    ChannelOrder,
    ChannelSettings,
    ImportPage,
)
from allocation_engine.service.channels.config import parse_channels
from allocation_engine.service.channels.intake import ChannelIntake
from allocation_engine.service.channels.mapping import place_command
from tests.support.orders import World

DATA = Path(__file__).parent.parent / "data" / "channels"
WORKFLOWS = ("b2c-prepaid", "b2b-invoice", "marketplace-paid")


def test_a_broken_channel_file_is_refused_with_every_problem_named() -> None:
    """Given a channel file with many mistakes, when it is parsed, then every one is reported at
    once, each naming the channel, the key and what is wrong."""
    with pytest.raises(InvalidInput) as raised:
        parse_channels((DATA / "broken.toml").read_text(), platform_specs(), WORKFLOWS)
    found = {p.field for p in raised.value.problems}
    assert {
        "channel[0].name",
        "channel[0].kind",
        "channel[0].base_url",
        "channel[0].workflow",
        "channel[0].node_types",
        "channel[0].poll_seconds",
        "channel[0].colour",
        "channel[0].credentials.webhook_secret",
        "channel[amazon-de].base_url",
        "channel[amazon-de].credentials.client_secret",
        "channel[amazon-de].credentials.refresh_token",
        "channel[amazon-de].credentials.password",
        "channel[amazon-de].options.marketplace_id",
        "channel[amazon-de].options.region",
        "channel[amazon-de].skus.MUG",
        "channel[amazon-de].skus.MUG-BLUE",
        "channel[amazon-de].name",
    } <= found, found


def test_channels_check_names_the_problems_and_passes_the_example(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Given the shipped example and the broken file, when `channels check` reads them, then
    the example passes listing each channel, the broken one exits 2 naming its problems,
    `--env` names each secret variable that is not set, and an option value the platform's
    adapter cannot read is named under its channel."""
    example = str(Path(__file__).parent.parent.parent / "examples" / "channels.toml")
    assert main(["channels", "check", example]) == 0
    assert "shopify-de (shopify)" in capsys.readouterr().out
    assert main(["channels", "check", str(DATA / "broken.toml")]) == 2
    assert "channel[0].kind='shopfiy'" in capsys.readouterr().err
    assert main(["channels", "check", example, "--env"]) == 2
    assert "SHOPIFY_DE_WEBHOOK_SECRET" in capsys.readouterr().err
    bad_option = tmp_path / "channels.toml"
    bad_option.write_text(
        '[[channel]]\nname = "e"\nkind = "ebay"\nbase_url = "https://api.ebay.com"\n'
        '[channel.credentials]\nclient_id = "A"\nclient_secret = "B"\nrefresh_token = "C"\n'
        '[channel.options]\ncreated_after = "yesterday"\n'
    )
    assert main(["channels", "check", str(bad_option)]) == 2
    assert "channel[e].options.created_after='yesterday'" in capsys.readouterr().err


def test_secrets_come_from_the_environment_and_a_missing_one_is_named() -> None:
    """Given a channel naming two variables, then its secrets are read from them, and an unset
    one is refused naming the channel, the role and the variable."""
    settings = ChannelSettings("s", "shopify", credentials={"webhook_secret": "S", "x": "T"})
    assert resolve_secrets(settings, {"S": "1", "T": "2"}) == {"webhook_secret": "1", "x": "2"}
    with pytest.raises(InvalidInput) as raised:
        resolve_secrets(settings, {"S": "1"})
    assert [(p.field, p.value) for p in raised.value.problems] == [
        ("channel[s].credentials.x", "T")
    ]


def order(**changes: object) -> ChannelOrder:
    base = ChannelOrder(
        external_id="1001",
        lines=(ChannelLine("MUG", 2, 1490, "Mug"), ChannelLine("POT", 1, 5900)),
        ship_to=ChannelAddress(name="Lena", postal_code="80331", city="München", country="de"),
        currency="eur",
        customer_id="77",
        email="lena@example.de",
    )
    return ChannelOrder(**{**base.__dict__, **changes})  # type: ignore[arg-type]


SHOP = ChannelSettings("shop-de", "shopify", skus={"MUG": "SKU-0001", "POT": "SKU-0002"})


def test_an_order_maps_by_the_sku_table_and_is_geocoded_by_postal_code() -> None:
    """Given a platform order without coordinates, then the PlaceOrder has our skus, the
    Munich postal code's centroid, the customer namespaced by channel, and B2C delivery."""
    command = place_command(SHOP, order(), PostalCodeTable())
    assert [(i.sku, i.quantity, i.unit_price) for i in command.items] == [
        ("SKU-0001", 2, 1490),
        ("SKU-0002", 1, 5900),
    ]
    assert command.ship_to.country == "DE"
    assert abs(command.ship_to.latitude - 48.137) < 0.1
    assert abs(command.ship_to.longitude - 11.575) < 0.1
    assert command.customer.id == "shop-de:77"
    assert command.currency == "EUR"
    assert command.customer_type is CustomerType.B2C
    assert command.delivery_mode is DeliveryMode.SHIP_TO_ADDRESS


def test_b2b_click_and_collect_and_split_lines() -> None:
    """Given a business buyer collecting at a store, with one sku on two lines whose unit
    prices differ by a cent, then the order is B2B click & collect and the sku is one line at
    the average unit price."""
    command = place_command(
        SHOP,
        order(
            b2b=True,
            pickup_store_id="ST-MUNICH",
            lines=(ChannelLine("MUG", 2, 667), ChannelLine("MUG", 1, 666)),
        ),
        PostalCodeTable(),
    )
    assert command.customer_type is CustomerType.B2B
    assert command.delivery_mode is DeliveryMode.CLICK_AND_COLLECT
    assert command.pickup_store_id == "ST-MUNICH"
    assert [(i.sku, i.quantity, i.unit_price) for i in command.items] == [("SKU-0001", 3, 667)]


def test_what_cannot_be_mapped_is_named() -> None:
    """Given an order with an unknown sku, a zero quantity and a postal code nobody knows, then
    every problem is named at once."""
    with pytest.raises(InvalidInput) as raised:
        place_command(
            SHOP,
            order(
                lines=(ChannelLine("CUP", 1, 100), ChannelLine("MUG", 0, 100)),
                ship_to=ChannelAddress(postal_code="ZZ", country="XQ"),
            ),
            PostalCodeTable(),
        )
    assert [p.field for p in raised.value.problems] == [
        "lines[0].sku",
        "lines[1].quantity",
        "ship_to.postal_code",
    ]


class Importer:
    """An importer over a fixed list: pages of two, the cursor the index reached; `failing`
    makes the next fetch raise as a platform outage does."""

    def __init__(self, orders: list[ChannelOrder]) -> None:
        self.orders, self.failing = orders, False

    def fetch(self, cursor: str) -> ImportPage:
        if self.failing:
            raise PeerUnavailable("the platform is down")
        start = int(cursor or 0)
        page = self.orders[start : start + 2]
        end = start + len(page)
        return ImportPage(tuple(page), str(end), more=end < len(self.orders))


class Webhooks:
    def verify(self, headers: dict[str, str], body: bytes) -> None:
        if headers.get("x-sig") != "ok":
            raise BadSignature("shop-de", "X-Sig")

    def delivery_id(self, headers: dict[str, str], body: bytes) -> str:
        return headers.get("x-id", "")

    def orders(self, headers: dict[str, str], body: bytes) -> list[ChannelOrder]:
        return [order(external_id=body.decode())]


def intake_for(world: World, importer: Importer, cursors: MemoryCursors) -> ChannelIntake:
    channels = parse_channels(
        '[[channel]]\nname = "shop-de"\nkind = "pos"\n\n'
        '[channel.skus]\nMUG = "SKU-0001"\nPOT = "SKU-0002"\n'
        '[[channel]]\nname = "market"\nkind = "pos"\n\n',
        platform_specs(),
        WORKFLOWS,
    )
    return ChannelIntake(
        channels,
        world.flow,
        world.services.inventory,
        world.orders,
        cursors,
        PostalCodeTable(),
        {"shop-de": Webhooks()},  # type: ignore[dict-item]
        {"market": importer, "shop-de": importer},
    )


def test_a_poll_moves_the_cursor_only_past_placed_orders(world: World) -> None:
    """Given five orders on a polled platform, when the platform goes down after the first
    page, then the cursor stays after that page (two orders placed); when it is back, the poll
    continues from there and places the other three; a poll from a lost cursor places none
    twice."""
    orders = [order(external_id=f"A-{i}") for i in range(5)]
    importer, cursors = Importer(orders), MemoryCursors()
    intake = intake_for(world, importer, cursors)
    first = importer.fetch
    calls = 0

    def flaky(cursor: str) -> ImportPage:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise PeerUnavailable("down mid-poll")
        return first(cursor)

    importer.fetch = flaky  # type: ignore[method-assign]
    with pytest.raises(PeerUnavailable):
        intake.poll("shop-de")
    assert cursors.cursor("shop-de") == "2"
    placed = intake.poll("shop-de")
    assert [p.record.external_id for p in placed.orders] == ["A-2", "A-3", "A-4"]
    assert all(p.created for p in placed.orders)
    cursors.advance("shop-de", "")
    again = intake.poll("shop-de")
    assert len(again.orders) == 5 and not any(p.created for p in again.orders)
    assert len(world.orders.list_orders(None, None, 0, 50)) == 5


def test_an_order_that_cannot_be_mapped_stops_the_poll_at_it(world: World) -> None:
    """Given a polled order with a sku the table lacks, then the poll fails naming it, the
    cursor stays before it, and the orders after it wait (none is skipped)."""
    orders = [order(external_id="B-0"), order(external_id="B-1", lines=(ChannelLine("X", 1, 1),))]
    orders.append(order(external_id="B-2"))
    cursors = MemoryCursors()
    intake = intake_for(world, Importer(orders), cursors)
    with pytest.raises(InvalidInput) as raised:
        intake.poll("shop-de")
    assert raised.value.problems[0].field == "order[B-1].lines[0].sku"
    assert cursors.cursor("shop-de") == ""
    assert [r.external_id for r in world.orders.list_orders(None, None, 0, 50)] == ["B-0"]


def test_a_webhook_places_once_and_a_bad_signature_places_nothing(world: World) -> None:
    """Given a webhook channel, when a delivery is badly signed, then BadSignature and nothing
    is placed; a good one places the order; its redelivery (same delivery id) reads nothing;
    another delivery of the same order places nothing new."""
    intake = intake_for(world, Importer([]), MemoryCursors())
    with pytest.raises(BadSignature):
        intake.webhook("shop-de", {"X-Sig": "no", "X-Id": "d1"}, b"W-1")
    assert world.orders.list_orders(None, None, 0, 50) == []
    first = intake.webhook("shop-de", {"X-Sig": "ok", "X-Id": "d1"}, b"W-1")
    assert [p.created for p in first.orders] == [True]
    assert intake.webhook("shop-de", {"X-Sig": "ok", "X-Id": "d1"}, b"W-1").duplicate
    other = intake.webhook("shop-de", {"X-Sig": "ok", "X-Id": "d2"}, b"W-1")
    assert [p.created for p in other.orders] == [False]


def test_a_channel_fence_narrows_the_node_types_of_every_rule_set() -> None:
    """Given a channel that may be served by warehouses only, then the rules the planner uses
    allow that channel warehouses only and leave other channels as the rules say."""
    rules = default_rules().fenced_by_channels({"market": frozenset({NodeType.WAREHOUSE})})
    assert rules.allowed_node_types(CustomerType.B2C, "market") == {NodeType.WAREHOUSE}
    assert NodeType.STORE in rules.allowed_node_types(CustomerType.B2C, "web")


def test_channel_orders_are_held_to_the_contract(world: World) -> None:
    """Given signed platform orders with a price past the money limit, a postal code of
    100,000 characters and a name with a lone surrogate (JSON can carry one, no store can
    write it), then each is refused naming the field, and nothing is placed."""
    intake = intake_for(world, Importer([]), MemoryCursors())
    cases = {
        "order[X-1].lines[0].unit_price": order(
            external_id="X-1", lines=(ChannelLine("MUG", 1, 10**17),)
        ),
        "order[X-2].address.postal_code": order(
            external_id="X-2",
            ship_to=ChannelAddress(
                postal_code="8" * 100_000, country="DE", latitude=48.1, longitude=11.5
            ),
        ),
        "order[X-3].customer.name": order(external_id="X-3", customer_name="Lena \ud800"),
    }
    for field, bad in cases.items():
        with pytest.raises(InvalidInput) as raised:
            intake._place(intake.settings("shop-de"), bad)
        assert field in [p.field for p in raised.value.problems], raised.value
    assert world.orders.list_orders(None, None, 0, 50) == []


def test_an_order_changed_at_the_platform_stays_placed(world: World) -> None:
    """Given an order placed from a webhook, when the platform delivers it again changed (a
    corrected e-mail, under a new delivery id), then the first order stands (not created
    again, no error that would stop the channel)."""
    intake = intake_for(world, Importer([]), MemoryCursors())
    first = intake._place(intake.settings("shop-de"), order(external_id="E-1"))
    again = intake._place(
        intake.settings("shop-de"), order(external_id="E-1", email="new@example.de")
    )
    assert (again.record.id, again.created) == (first.record.id, False)


def test_payloads_and_answers_of_the_wrong_shape_are_typed_errors(world: World) -> None:
    """Given a webhook source that trips over a payload (a TypeError inside the adapter) and an
    importer whose platform answers something unreadable, then the webhook is InvalidInput
    naming the body and the poll PeerUnavailable naming the channel: never an untyped error."""

    class Tripping(Webhooks):
        def orders(self, headers: dict[str, str], body: bytes) -> list[ChannelOrder]:
            raise TypeError("'int' object is not iterable")

    class Garbled(Importer):
        def fetch(self, cursor: str) -> ImportPage:
            raise KeyError("items")

    intake = intake_for(world, Garbled([]), MemoryCursors())
    intake._webhooks = {"shop-de": Tripping()}  # type: ignore[dict-item]
    with pytest.raises(InvalidInput) as raised:
        intake.webhook("shop-de", {"X-Sig": "ok"}, b'{"line_items": 5}')
    assert raised.value.problems[0].field == "body"
    with pytest.raises(PeerUnavailable, match="market"):
        intake.poll("market")
