"""`PromiseService` over gRPC: GetDeliveryOptions answers what a checkout may offer for a cart.

Thin like the other servicers: decode the cart (`convert.promise`), call `Promises.options`,
encode (`answer`, which the HTTP edge's POST /v1/delivery-options calls too). The request's
sizes and ranges were checked before (`api.bounds`); errors are mapped by
`api.errors.ErrorInterceptor`.
"""

from __future__ import annotations

from typing import Any

import grpc

from allocation_engine.api.convert.promise import cart_from_proto, options_to_proto
from allocation_engine.api.request import deadline_of
from allocation_engine.proto.allocation.v1 import promise_pb2 as ppb
from allocation_engine.proto.allocation.v1 import promise_pb2_grpc as ppb_grpc
from allocation_engine.service import access
from allocation_engine.service.deadline import Deadline
from allocation_engine.service.promise import Promises


class PromiseServicer(ppb_grpc.PromiseServiceServicer):
    def __init__(self, promises: Promises) -> None:
        self._promises = promises

    def GetDeliveryOptions(
        self, request: ppb.GetDeliveryOptionsRequest, context: grpc.ServicerContext
    ) -> Any:
        return self.answer(request, deadline_of(context))

    def answer(
        self, request: ppb.GetDeliveryOptionsRequest, deadline: Deadline | None
    ) -> ppb.GetDeliveryOptionsResponse:
        """The answer to `request` within `deadline` (the HTTP edge, which has no gRPC
        context, calls this with none). A caller bound to channels asks only for its own."""
        cart = cart_from_proto(request)
        access.check_channel(access.current_caller(), cart.channel)
        return options_to_proto(self._promises.options(cart, deadline))
