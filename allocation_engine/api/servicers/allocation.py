"""`AllocationService` over gRPC: Allocate plans an order, Reserve holds its stock, and the
reservation calls commit, release or read a hold.

Thin by design: each method decodes the request (`convert`), calls one use case of `Services`
(`planner`, `reservations`) and encodes the answer; the request's sizes and ranges were checked
before (`api.bounds`). Errors are raised typed
and mapped to statuses by `api.errors.ErrorInterceptor`; a decoded message's bad fields are
named from the request down with `fields_under` (`order.lines[0].quantity`, `plan.status`).
"""

from __future__ import annotations

from typing import Any

import grpc

from allocation_engine.api.convert.allocation import (
    plan_from_proto,
    plan_to_proto,
    reservation_to_proto,
)
from allocation_engine.api.convert.common import order_from_proto
from allocation_engine.api.convert.rules import rules_text_from_proto
from allocation_engine.api.request import (
    Limits,
    deadline_of,
    fields_under,
    fingerprint,
    required_reservation_id,
)
from allocation_engine.engine import InvalidInput, parse_rules
from allocation_engine.proto.allocation.v1 import allocation_pb2 as apb
from allocation_engine.proto.allocation.v1 import allocation_pb2_grpc as apb_grpc
from allocation_engine.service import Services


class AllocationServicer(apb_grpc.AllocationServiceServicer):
    def __init__(self, services: Services, limits: Limits) -> None:
        self._services = services
        self._limits = limits

    def Allocate(self, request: apb.AllocateRequest, context: grpc.ServicerContext) -> Any:
        with fields_under("order."):
            order = order_from_proto(request.order)
        rules = (
            parse_rules(rules_text_from_proto(request.rule_set))
            if request.HasField("rule_set")
            else None
        )
        plan = self._services.planner.plan(order, rules, deadline_of(context))
        return apb.AllocateResponse(plan=plan_to_proto(plan, explain=request.explain))

    def Reserve(self, request: apb.ReserveRequest, context: grpc.ServicerContext) -> Any:
        if not request.idempotency_key:
            raise InvalidInput.one("idempotency_key", "", "is required")
        with fields_under("order."):
            order = order_from_proto(request.order)
        plan = None
        if request.HasField("plan"):
            with fields_under("plan."):
                plan = plan_from_proto(request.plan)
        record = self._services.reservations.reserve(
            request.idempotency_key,
            fingerprint(request),
            order,
            ttl_seconds=request.ttl_seconds,
            plan=plan,
            strict_plan=request.strict_plan,
            deadline=deadline_of(context),
        )
        return apb.ReserveResponse(reservation=reservation_to_proto(record))

    def CommitReservation(
        self, request: apb.CommitReservationRequest, context: grpc.ServicerContext
    ) -> Any:
        record = self._services.reservations.commit(
            required_reservation_id(request.reservation_id),
            request.idempotency_key,
            fingerprint(request),
        )
        return apb.CommitReservationResponse(reservation=reservation_to_proto(record))

    def ReleaseReservation(
        self, request: apb.ReleaseReservationRequest, context: grpc.ServicerContext
    ) -> Any:
        record = self._services.reservations.release(
            required_reservation_id(request.reservation_id),
            request.idempotency_key,
            fingerprint(request),
        )
        return apb.ReleaseReservationResponse(reservation=reservation_to_proto(record))

    def GetReservation(
        self, request: apb.GetReservationRequest, context: grpc.ServicerContext
    ) -> Any:
        record = self._services.reservations.get(required_reservation_id(request.reservation_id))
        return apb.GetReservationResponse(reservation=reservation_to_proto(record))
