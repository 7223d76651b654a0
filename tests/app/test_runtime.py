"""How `serve` wires the workflow: without a card provider, card orders are refused as
UNAVAILABLE (saying what to configure) while invoice orders work."""

from __future__ import annotations

from pathlib import Path

import pytest

from allocation_engine.adapters.clock import FakeClock
from allocation_engine.adapters.memory.inventory import MemoryStore
from allocation_engine.app.orders import OrderConfig, OrderRuntime
from allocation_engine.engine import default_rules
from allocation_engine.engine.rules import default_rules_text
from allocation_engine.errors import ProviderUnavailable
from allocation_engine.orders.machines import OrderState
from allocation_engine.service import Services
from tests.support.orders import b2b, b2c, seed


def test_without_a_card_provider_card_orders_are_unavailable(tmp_path: Path) -> None:
    store = MemoryStore()
    seed(store)
    services = Services.build(store, FakeClock(), default_rules(), default_rules_text())
    config = OrderConfig(mail_dir=str(tmp_path / "mail"), wms_dir=str(tmp_path / "wms"))
    runtime = OrderRuntime.build(services, config, FakeClock())
    assert any("no card provider" in note for note in runtime.notes)
    with pytest.raises(ProviderUnavailable) as raised:
        runtime.flow.place(b2c("w-1", A=1))
    assert "--card-url" in str(raised.value)
    assert runtime.flow.list_orders() == []
    assert runtime.flow.place(b2b("po-1", C=1)).record.state is OrderState.RELEASED
