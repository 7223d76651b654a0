"""A 3PL's shipment confirmations on the HTTP edge of a real server: `POST /v1/3pl/shipments`
ships a released parcel (the same report twice answers once; a different one of the same
parcel is a reused key), a short pick ships fewer units and reroutes the rest, a rejection
reroutes everything, and a bad body is refused naming its fields before anything changes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from allocation_engine.app.orders import OrderConfig
from allocation_engine.app.serve import Running, ServeConfig, start

SHIPMENTS = "/v1/3pl/shipments"


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[Running]:
    orders = OrderConfig(
        mail_dir=str(tmp_path / "mail"), wms_dir=str(tmp_path / "wms"), demo=True, dispatch=False
    )
    running = start(ServeConfig(port=0, http_port=0, demo=True, orders=orders))
    yield running
    running.stop(0)


def post(running: Running, path: str, body: Any) -> httpx.Response:
    assert running.http is not None
    return httpx.post(running.http.url + path, json=body, timeout=30)


def released(running: Running, external_id: str, quantity: int = 2) -> dict[str, Any]:
    """A B2B order (invoice: released to its node at once); its one parcel."""
    answer = post(
        running,
        "/v1/orders",
        {
            "channel": "web",
            "externalOrderId": external_id,
            "customer": {"email": "ada@example.com"},
            "customerType": "CUSTOMER_TYPE_B2B",
            "lines": [{"sku": "SKU-0001", "quantity": quantity, "unitPrice": 1000}],
            "shipTo": {"latitude": 50.94, "longitude": 6.96, "country": "DE"},
            "address": {"name": "Ada", "street": "Domplatz 1", "city": "Köln", "country": "DE"},
        },
    )
    assert answer.status_code == 200, answer.text
    order = answer.json()["order"]
    (parcel,) = order["shipments"]
    assert parcel["state"] == "SHIPMENT_STATE_RELEASED"
    return {"order_id": order["id"], **parcel}


def test_a_shipped_parcel_is_recorded_once(edge: Running) -> None:
    """Given a released parcel, when the 3PL reports it shipped twice, then it is shipped with
    its carrier and tracking, the second answer is the first, and a different report of the
    same parcel is refused as a reused key (409)."""
    parcel = released(edge, "b-1")
    report = {
        "order_id": parcel["order_id"],
        "shipment_id": parcel["id"],
        "status": "shipped",
        "carrier": "DHL",
        "tracking": "00340434",
    }
    first = post(edge, SHIPMENTS, report)
    assert first.status_code == 200, first.text
    (shipped,) = first.json()["order"]["shipments"]
    assert (shipped["state"], shipped["carrier"], shipped["tracking_number"]) == (
        "SHIPMENT_STATE_SHIPPED",
        "DHL",
        "00340434",
    )
    assert post(edge, SHIPMENTS, report).json() == first.json()
    other = post(edge, SHIPMENTS, {**report, "tracking": "999"})
    assert other.status_code == 409, other.text


def test_a_short_pick_ships_fewer_units_and_a_rejection_reroutes(edge: Running) -> None:
    """Given two released parcels, when the 3PL ships one with 1 of its 2 units and rejects
    the other (no stock), then the first is shipped with 1 unit and each order has the rest
    planned on a new parcel."""
    short = released(edge, "b-1")
    rejected = released(edge, "b-2")
    answer = post(
        edge,
        SHIPMENTS,
        {
            "order_id": short["order_id"],
            "shipment_id": short["id"],
            "status": "shipped",
            "lines": [{"sku": "SKU-0001", "quantity": 1}],
            "carrier": "DHL",
            "tracking": "1",
        },
    )
    assert answer.status_code == 200, answer.text
    parcels = {s["id"]: s for s in answer.json()["order"]["shipments"]}
    assert parcels[short["id"]]["lines"] == [{"sku": "SKU-0001", "quantity": 1}]
    assert len(parcels) == 2  # the rest rerouted onto a new parcel
    refused = post(
        edge,
        SHIPMENTS,
        {
            "order_id": rejected["order_id"],
            "shipment_id": rejected["id"],
            "status": "rejected",
            "reason": "no_stock",
            "note": "bin empty",
        },
    )
    assert refused.status_code == 200, refused.text
    states = {s["id"]: s["state"] for s in refused.json()["order"]["shipments"]}
    assert states[rejected["id"]] == "SHIPMENT_STATE_REJECTED"
    assert len(states) == 2


def test_a_bad_report_is_refused_naming_its_fields(edge: Running) -> None:
    """Given a released parcel, when reports with an unknown status, a rejection without a
    reason, lines on a rejection or a sku twice arrive, then each is 400 naming the field, and
    the parcel is still released."""
    parcel = released(edge, "b-1")
    base = {"order_id": parcel["order_id"], "shipment_id": parcel["id"]}
    line = {"sku": "SKU-0001", "quantity": 1}
    for body, field in (
        ({**base, "status": "lost"}, "status"),
        ({**base, "status": "rejected"}, "reason"),
        ({**base, "status": "rejected", "reason": "damaged", "lines": [line]}, "lines"),
        ({**base, "status": "shipped", "carrier": "DHL", "lines": [line, line]}, "lines[1].sku"),
        ({"status": "shipped"}, "order_id"),
    ):
        answer = post(edge, SHIPMENTS, body)
        assert answer.status_code == 400, (body, answer.text)
        assert field in [p["field"] for p in answer.json()["problems"]], answer.text
    order = httpx.get(edge.http.url + f"/v1/orders/{parcel['order_id']}").json()  # type: ignore[union-attr]
    assert order["order"]["shipments"][0]["state"] == "SHIPMENT_STATE_RELEASED"
