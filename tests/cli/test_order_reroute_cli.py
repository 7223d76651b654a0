"""`allocation-engine order ship --sent` and `order reject` against a running server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from allocation_engine.cli.main import main
from tests.support.shop import Shop

pytestmark = pytest.mark.redis


def test_a_short_pick_and_a_reject_from_the_command_line(
    shop: Shop, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    order = {
        "channel": "web",
        "external_order_id": "web-cli-1",
        "customer": {"email": "ada@example.com", "name": "Ada Lovelace"},
        "lines": [{"sku": "A", "quantity": 4, "unit_price": 1990, "name": "Espresso cup"}],
        "ship_to": {"latitude": 50.94, "longitude": 6.96, "country": "DE"},
        "payment_method": "pm_card_visa",
    }
    path = tmp_path / "order.json"
    path.write_text(json.dumps(order))
    target = ["--target", shop.address]
    assert main(["order", "place", str(path), *target, "--json"]) == 0
    placed = json.loads(capsys.readouterr().out)["order"]
    (parcel,) = placed["shipments"]
    assert parcel["node_id"] == "WH-KOELN"
    ship = ["order", "ship", placed["id"], parcel["id"], "--carrier", "DHL", "--tracking", "T1"]
    assert main([*ship, "--sent", "A=1", *target, "--json"]) == 0
    shipped = json.loads(capsys.readouterr().out)["order"]
    rerouted = shipped["shipments"][1]
    assert (rerouted["node_id"], rerouted["lines"]) == ("WH-BERLIN", [{"sku": "A", "quantity": 3}])
    reject = ["order", "reject", placed["id"], rerouted["id"], "--reason", "no_capacity"]
    assert main([*reject, "--note", "dock closed", *target]) == 0
    out = capsys.readouterr().out
    assert "CANCELLED" in out or "REJECTED" in out
    with pytest.raises(SystemExit) as refused:
        main([*reject[:-1], "tired", *target])
    assert refused.value.code == 2
    assert "invalid choice: 'tired'" in capsys.readouterr().err  # with the choices named
