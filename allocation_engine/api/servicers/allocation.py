"""TODO docstring."""

from __future__ import annotations

from typing import Any

import grpc

from allocation_engine.api.convert.allocation import (
    plan_from_proto,
    plan_to_proto,
    reservation_to_proto,
)
from allocation_engine.api.convert.common import (
    order_from_proto,
)
from allocation_engine.api.convert.rules import (
    rules_text_from_proto,
)
from allocation_engine.api.errors import handled
from allocation_engine.api.request import (
    Limits,
    check_limit,
    deadline_of,
    fingerprint,
    order_fields,
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

    @handled
    def Allocate(self, request: apb.AllocateRequest, context: grpc.ServicerContext) -> Any:
        check_limit("order.lines", len(request.order.lines), self._limits.max_lines_per_order)
        order = order_from_proto(request.order)
        rules = (
            parse_rules(rules_text_from_proto(request.rule_set))
            if request.HasField("rule_set")
            else None
        )
        try:
            plan = self._services.planner.plan(order, rules, deadline_of(context))
        except InvalidInput as bad:
            raise order_fields(bad) from None
        return apb.AllocateResponse(plan=plan_to_proto(plan, explain=request.explain))

    @handled
    def Reserve(self, request: apb.ReserveRequest, context: grpc.ServicerContext) -> Any:
        if not request.idempotency_key:
            raise InvalidInput.one("idempotency_key", "", "is required")
        check_limit("order.lines", len(request.order.lines), self._limits.max_lines_per_order)
        order = order_from_proto(request.order)
        plan = plan_from_proto(request.plan) if request.HasField("plan") else None
        try:
            record = self._services.reservations.reserve(
                request.idempotency_key,
                fingerprint(request),
                order,
                ttl_seconds=request.ttl_seconds,
                plan=plan,
                strict_plan=request.strict_plan,
                deadline=deadline_of(context),
            )
        except InvalidInput as bad:
            raise order_fields(bad) from None
        return apb.ReserveResponse(reservation=reservation_to_proto(record))

    @handled
    def CommitReservation(
        self, request: apb.CommitReservationRequest, context: grpc.ServicerContext
    ) -> Any:
        record = self._services.reservations.commit(
            required_reservation_id(request.reservation_id),
            request.idempotency_key,
            fingerprint(request),
        )
        return apb.CommitReservationResponse(reservation=reservation_to_proto(record))

    @handled
    def ReleaseReservation(
        self, request: apb.ReleaseReservationRequest, context: grpc.ServicerContext
    ) -> Any:
        record = self._services.reservations.release(
            required_reservation_id(request.reservation_id),
            request.idempotency_key,
            fingerprint(request),
        )
        return apb.ReleaseReservationResponse(reservation=reservation_to_proto(record))

    @handled
    def GetReservation(
        self, request: apb.GetReservationRequest, context: grpc.ServicerContext
    ) -> Any:
        record = self._services.reservations.get(required_reservation_id(request.reservation_id))
        return apb.GetReservationResponse(reservation=reservation_to_proto(record))
