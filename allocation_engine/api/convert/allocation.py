"""Protobuf <-> domain for `allocation.proto`: plans, shipments and reservations.

Plans go out with every Allocate and Reserve answer and come back in when a client reserves
a plan it was given (Reserve with `plan`), so they have a reader and a writer; what the wire does
not carry (the engine's method name, explanations unless asked for, a NaN gap) is not restored.
Reservations only leave the server.
"""

from __future__ import annotations

import math

from allocation_engine.api.convert.common import (
    enum_from_proto,
    shortfall_from_proto,
    shortfall_to_proto,
    timestamp,
)
from allocation_engine.engine import (
    LotTake,
    Plan,
    Shipment,
    ShipmentLine,
    Status,
)
from allocation_engine.errors import ProblemCollector
from allocation_engine.ports.inventory import (
    ReservationRecord,
    ReservationState,
)
from allocation_engine.proto.allocation.v1 import allocation_pb2 as apb

_STATUSES = {
    Status.OPTIMAL: apb.PLAN_STATUS_OPTIMAL,
    Status.FEASIBLE: apb.PLAN_STATUS_FEASIBLE,
    Status.INFEASIBLE: apb.PLAN_STATUS_INFEASIBLE,
}


_RESERVATION_STATES = {
    ReservationState.PENDING: apb.RESERVATION_STATE_PENDING,
    ReservationState.HELD: apb.RESERVATION_STATE_HELD,
    ReservationState.COMMITTED: apb.RESERVATION_STATE_COMMITTED,
    ReservationState.RELEASED: apb.RESERVATION_STATE_RELEASED,
    ReservationState.EXPIRED: apb.RESERVATION_STATE_EXPIRED,
    ReservationState.FULFILLED: apb.RESERVATION_STATE_FULFILLED,
}


def plan_to_proto(plan: Plan, *, explain: bool = False) -> apb.Plan:
    """The plan as clients see it; a NaN gap (a heuristic proved nothing) is sent as 0."""
    message = apb.Plan(
        order_id=plan.order_id,
        status=_STATUSES[plan.status],
        shipments=[
            apb.Shipment(
                node_id=s.node_id,
                lines=[apb.ShipmentLine(sku=line.sku, quantity=line.quantity) for line in s.lines],
                distance_km=s.distance_km,
                cost=s.cost,
                transfer_to=s.transfer_to,
                ship_day=s.ship_day,
                lots=[apb.LotTake(lot_id=t.lot_id, sku=t.sku, units=t.units) for t in s.lots],
            )
            for s in plan.shipments
        ],
        total_cost=plan.total_cost,
        optimality_gap=0.0 if math.isnan(plan.optimality_gap) else plan.optimality_gap,
        unfilled=[apb.ShipmentLine(sku=line.sku, quantity=line.quantity) for line in plan.unfilled],
        shortfalls=[shortfall_to_proto(s) for s in plan.shortfalls],
        rules_name=plan.rules_name,
        rules_version=plan.rules_version,
        candidates=plan.candidates,
        solver_candidates=plan.solver_candidates,
    )
    if explain:
        message.explanations.extend(
            apb.Explanation(node_id=e.node_id, reason=e.reason.name, detail=e.detail)
            for e in plan.explanations
        )
    return message


def plan_from_proto(message: apb.Plan) -> Plan:
    """A plan as a client sent it back (Reserve with a plan) or as the CLI prints it.

    Bad fields are named from the plan down (`status`); the method is "engine", the gap as sent.
    """
    problems = ProblemCollector()
    status = enum_from_proto(_STATUSES, message.status, "status", Status.FEASIBLE, problems)
    problems.raise_if_any()
    return Plan(
        order_id=message.order_id,
        method="engine",
        status=status or Status.FEASIBLE,
        shipments=tuple(
            Shipment(
                s.node_id,
                tuple(ShipmentLine(line.sku, line.quantity) for line in s.lines),
                s.distance_km,
                s.cost,
                s.transfer_to,
                s.ship_day,
                tuple(LotTake(t.lot_id, t.sku, t.units) for t in s.lots),
            )
            for s in message.shipments
        ),
        total_cost=message.total_cost,
        optimality_gap=message.optimality_gap,
        unfilled=tuple(ShipmentLine(line.sku, line.quantity) for line in message.unfilled),
        shortfalls=tuple(shortfall_from_proto(s) for s in message.shortfalls),
        rules_name=message.rules_name,
        rules_version=message.rules_version,
        candidates=message.candidates,
        solver_candidates=message.solver_candidates,
    )


def reservation_to_proto(record: ReservationRecord) -> apb.Reservation:
    """A reservation as clients see it, with its plan when it has one."""
    message = apb.Reservation(
        id=record.id,
        order_id=record.order_id,
        state=_RESERVATION_STATES[record.state],
        created_at=timestamp(record.created_at),
        expires_at=timestamp(record.expires_at),
        attempts=record.attempt,
    )
    if record.plan is not None:
        message.plan.CopyFrom(plan_to_proto(record.plan))
    return message
