"""Reserve, commit, release and expiry over gRPC, against the memory store and Redis."""

from __future__ import annotations

import grpc
import pytest

from allocation_engine.adapters.clock import FakeClock
from allocation_engine.api.server import AllocationServer
from allocation_engine.proto.allocation.v1 import allocation_pb2 as apb
from allocation_engine.proto.allocation.v1 import allocation_pb2_grpc as apb_grpc
from allocation_engine.proto.allocation.v1 import common_pb2 as cpb
from allocation_engine.proto.allocation.v1 import inventory_pb2 as ipb
from allocation_engine.proto.allocation.v1 import inventory_pb2_grpc as ipb_grpc
from tests.support.grpc_inventory import available, details, order, reserve


def held_units(reservation: apb.Reservation) -> dict[tuple[str, str], int]:
    return {
        (s.node_id, line.sku): line.quantity for s in reservation.plan.shipments for line in s.lines
    }


def test_reserve_holds_the_planned_stock(
    allocation: apb_grpc.AllocationServiceStub, inventory: ipb_grpc.InventoryServiceStub
) -> None:
    """A reservation holds what its plan ships: available drops by exactly that."""
    reservation = reserve(allocation, "k1", order(A=2, B=1))
    assert reservation.state == apb.RESERVATION_STATE_HELD
    assert held_units(reservation) == {("WH-FRA", "A"): 2, ("WH-FRA", "B"): 1}
    assert available(inventory, "A") == {"WH-FRA": 3, "WH-BER": 9}
    assert available(inventory, "B") == {"WH-FRA": 1, "ST-MUC": 3}


def test_a_retried_reserve_returns_the_same_reservation_and_holds_once(
    allocation: apb_grpc.AllocationServiceStub, inventory: ipb_grpc.InventoryServiceStub
) -> None:
    first = reserve(allocation, "k1", order(A=4))
    again = reserve(allocation, "k1", order(A=4))
    assert again.id == first.id
    assert held_units(again) == held_units(first)
    assert available(inventory, "A") == {"WH-FRA": 1, "WH-BER": 9}


def test_the_same_key_with_another_order_is_refused_and_changes_nothing(
    allocation: apb_grpc.AllocationServiceStub, inventory: ipb_grpc.InventoryServiceStub
) -> None:
    reserve(allocation, "k1", order(A=1))
    with pytest.raises(grpc.RpcError) as caught:
        reserve(allocation, "k1", order(A=3))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert available(inventory, "A") == {"WH-FRA": 4, "WH-BER": 9}


def test_not_enough_stock_is_failed_precondition_with_the_shortfalls_as_details(
    allocation: apb_grpc.AllocationServiceStub, inventory: ipb_grpc.InventoryServiceStub
) -> None:
    """A short order holds nothing, and a retry with its key gets the same shortfalls."""
    for _ in range(2):
        with pytest.raises(grpc.RpcError) as caught:
            reserve(allocation, "short", order(A=15, B=1))
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        stock = [d for d in details(caught.value) if isinstance(d, cpb.InsufficientStock)]
        assert [(s.sku, s.requested, s.available) for s in stock[0].shortfalls] == [("A", 15, 14)]
    assert available(inventory, "A") == {"WH-FRA": 5, "WH-BER": 9}


def test_commit_keeps_the_hold_past_its_expiry_and_release_gives_it_back(
    allocation: apb_grpc.AllocationServiceStub,
    inventory: ipb_grpc.InventoryServiceStub,
    server: AllocationServer,
    clock: FakeClock,
) -> None:
    reservation = reserve(allocation, "k1", order(A=5), ttl=30)
    committed = allocation.CommitReservation(
        apb.CommitReservationRequest(reservation_id=reservation.id, idempotency_key="c1")
    ).reservation
    assert committed.state == apb.RESERVATION_STATE_COMMITTED
    clock.advance(3600)
    server.sweep()
    assert sum(available(inventory, "A").values()) == 9
    again = allocation.CommitReservation(
        apb.CommitReservationRequest(reservation_id=reservation.id, idempotency_key="c1")
    ).reservation
    assert again.state == apb.RESERVATION_STATE_COMMITTED

    released = allocation.ReleaseReservation(
        apb.ReleaseReservationRequest(reservation_id=reservation.id, idempotency_key="r1")
    ).reservation
    assert released.state == apb.RESERVATION_STATE_RELEASED
    assert available(inventory, "A") == {"WH-FRA": 5, "WH-BER": 9}


def test_an_expired_hold_stops_counting_at_once_and_cannot_be_committed(
    allocation: apb_grpc.AllocationServiceStub,
    inventory: ipb_grpc.InventoryServiceStub,
    server: AllocationServer,
    clock: FakeClock,
) -> None:
    """Past expires_at the stock is available again before any sweeper ran; commit then is
    FAILED_PRECONDITION; the sweeper leaves nothing due."""
    reservation = reserve(allocation, "k1", order(A=14), ttl=30)
    assert sum(available(inventory, "A").values()) == 0
    clock.advance(31)
    assert available(inventory, "A") == {"WH-FRA": 5, "WH-BER": 9}
    with pytest.raises(grpc.RpcError) as caught:
        allocation.CommitReservation(
            apb.CommitReservationRequest(reservation_id=reservation.id, idempotency_key="c1")
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    got = allocation.GetReservation(apb.GetReservationRequest(reservation_id=reservation.id))
    assert got.reservation.state == apb.RESERVATION_STATE_EXPIRED
    server.sweep()
    assert server.services.store.due_reservations(clock.now(), 10) == []


def test_the_sweeper_expires_overdue_reservations(
    allocation: apb_grpc.AllocationServiceStub, server: AllocationServer, clock: FakeClock
) -> None:
    reservation = reserve(allocation, "k1", order(B=2), ttl=10)
    clock.advance(11)
    server.sweep()
    record = server.services.store.get_reservation(reservation.id)
    assert record is not None
    assert record.state.value == "EXPIRED"


def test_a_given_plan_is_held_as_given(
    allocation: apb_grpc.AllocationServiceStub, inventory: ipb_grpc.InventoryServiceStub
) -> None:
    """Reserve takes a plan from Allocate (here one shipping A from Berlin)."""
    plan = allocation.Allocate(apb.AllocateRequest(order=order(A=2))).plan
    del plan.shipments[:]
    plan.shipments.add(node_id="WH-BER", lines=[apb.ShipmentLine(sku="A", quantity=2)])
    request = apb.ReserveRequest(idempotency_key="k1", order=order(A=2), plan=plan)
    reservation = allocation.Reserve(request).reservation
    assert held_units(reservation) == {("WH-BER", "A"): 2}
    assert available(inventory, "A") == {"WH-FRA": 5, "WH-BER": 7}


def test_a_stale_plan_is_replanned_unless_strict(
    allocation: apb_grpc.AllocationServiceStub, inventory: ipb_grpc.InventoryServiceStub
) -> None:
    """Stock moved after Allocate: Reserve plans again; with strict_plan it refuses."""
    plan = allocation.Allocate(apb.AllocateRequest(order=order(A=5))).plan
    reserve(allocation, "other", order("o-2", A=1))  # takes one A from Frankfurt
    strict = apb.ReserveRequest(idempotency_key="k1", order=order(A=5), plan=plan, strict_plan=True)
    with pytest.raises(grpc.RpcError) as caught:
        allocation.Reserve(strict)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    loose = apb.ReserveRequest(idempotency_key="k2", order=order(A=5), plan=plan)
    reservation = allocation.Reserve(loose).reservation
    assert reservation.attempts == 2
    assert sum(held_units(reservation).values()) == 5
    assert sum(available(inventory, "A").values()) == 14 - 1 - 5


def test_a_plan_that_does_not_match_the_order_is_invalid(
    allocation: apb_grpc.AllocationServiceStub,
) -> None:
    plan = apb.Plan(
        shipments=[apb.Shipment(node_id="WH-XXX", lines=[apb.ShipmentLine(sku="A", quantity=1)])]
    )
    with pytest.raises(grpc.RpcError) as caught:
        allocation.Reserve(apb.ReserveRequest(idempotency_key="k", order=order(A=2), plan=plan))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "plan.shipments[0].node_id" in (caught.value.details() or "")


@pytest.mark.parametrize(
    ("take", "field"),
    [
        (apb.LotTake(lot_id="PO-1", sku="B", units=1), "plan.shipments[0].lots[0].sku"),
        (apb.LotTake(lot_id="PO-1", sku="A", units=3), "plan.shipments[0].lots[0].units"),
        (apb.LotTake(lot_id="PO-1", sku="A", units=0), "plan.shipments[0].lots[0].units"),
    ],
)
def test_a_plan_taking_units_of_incoming_supply_it_does_not_ship_is_invalid(
    allocation: apb_grpc.AllocationServiceStub, take: apb.LotTake, field: str
) -> None:
    """A client's plan may say which of its units come from a lot, never more than it ships."""
    lines = [apb.ShipmentLine(sku="A", quantity=2)]
    plan = apb.Plan(shipments=[apb.Shipment(node_id="WH-FRA", lines=lines, lots=[take])])
    with pytest.raises(grpc.RpcError) as caught:
        allocation.Reserve(apb.ReserveRequest(idempotency_key="k", order=order(A=2), plan=plan))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (caught.value.details() or "")


def test_unknown_reservation_is_not_found(allocation: apb_grpc.AllocationServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        allocation.GetReservation(apb.GetReservationRequest(reservation_id="res-nope"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_reserve_without_key_is_invalid(allocation: apb_grpc.AllocationServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        allocation.Reserve(apb.ReserveRequest(order=order(A=1)))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_shipped_reservation_leaves_on_hand_and_reserved_together(
    allocation: apb_grpc.AllocationServiceStub,
    inventory: ipb_grpc.InventoryServiceStub,
    server: AllocationServer,
) -> None:
    """Committed holds are released when the WMS confirms the shipment (`fulfil`): the units
    leave on_hand and reserved at once, so available does not move."""
    reservation = reserve(allocation, "k1", order(A=2))
    allocation.CommitReservation(
        apb.CommitReservationRequest(reservation_id=reservation.id, idempotency_key="c")
    )
    server.services.reservations.fulfil(reservation.id)
    position = (
        inventory.GetAvailability(ipb.GetAvailabilityRequest(skus=["A"], node_ids=["WH-FRA"]))
        .skus[0]
        .positions[0]
    )
    assert (position.on_hand, position.reserved, position.available) == (3, 0, 3)


def test_a_retried_reserve_answers_the_first_plan_byte_for_byte(
    allocation: apb_grpc.AllocationServiceStub,
) -> None:
    """Distances and costs come back exactly as the first call answered them (the store keeps
    floats as they are, not rounded)."""
    request = apb.ReserveRequest(idempotency_key="exact", order=order(A=2, B=1), ttl_seconds=60)
    first = allocation.Reserve(request)
    again = allocation.Reserve(request)
    assert first.reservation.plan.shipments[0].distance_km % 0.001 != 0  # not a round number
    assert again.SerializeToString() == first.SerializeToString()
