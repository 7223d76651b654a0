"""The HTTP edge: webhooks from shops and marketplaces, REST for systems that speak no gRPC.

Routes (the OpenAPI document is served at /openapi.json, readable at /docs):

    GET  /healthz                                   open: SERVING while the store answers
    POST /webhooks/{channel}                        a platform's webhook, verified by ITS signature
    POST /v1/orders                                 PlaceOrder (orders:place)
    GET  /v1/orders/{order_id}                      GetOrder (orders:read)
    POST /v1/orders/{order_id}/shipments/{id}/ship  RecordShipment (shipments:confirm)
    POST /v1/channels/{channel}/sales               a POS sale off a store's stock (inventory:write)
    POST /v1/channels/{channel}/poll                poll an importer now (orders:manage)

Handlers are thin, like the servicers: verify, decode into the request message or the domain,
call the same use case, answer. Errors are mapped in one place (`api.http.errors`), callers
admitted in one place (`api.http.gate`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import FastAPI, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from allocation_engine.api.http.errors import answer_for, error_body
from allocation_engine.api.http.gate import HttpGate, Refused
from allocation_engine.api.http.transcode import call, decode
from allocation_engine.api.servicers.orders import OrderServicer
from allocation_engine.engine.limits import MAX_ID_CHARS, MAX_PAYLOAD_BYTES, MAX_UNITS
from allocation_engine.errors import AllocationError, LimitExceeded, NotFound
from allocation_engine.observability.metrics import Metrics
from allocation_engine.proto.allocation.v1 import orders_pb2 as opb
from allocation_engine.service.access import check_channel, check_node, current_caller
from allocation_engine.service.channels.intake import ChannelIntake, Received, Sale, SaleLine

ORDERS = "/allocation.v1.OrderService/"
Authorization = Annotated[str | None, Header(description="Bearer <token>")]


@dataclass(frozen=True)
class HttpDeps:
    """What the edge calls: the order servicer (the gRPC edge's own), the channel intake, the
    gate, a health probe, and the metrics to record into (None: none kept)."""

    orders: OrderServicer
    intake: ChannelIntake | None
    gate: HttpGate
    healthy: Callable[[], bool]
    metrics: Metrics | None = None


class SaleLineIn(BaseModel):
    sku: str = Field(min_length=1, max_length=MAX_ID_CHARS, description="the channel's sku")
    quantity: int = Field(ge=1, le=MAX_UNITS)


class SaleIn(BaseModel):
    """A sale at a store's till (the goods left with the customer)."""

    sale_id: str = Field(min_length=1, max_length=MAX_ID_CHARS, description="receipt number")
    store_id: str = Field(min_length=1, max_length=MAX_ID_CHARS, description="the store node")
    lines: list[SaleLineIn] = Field(min_length=1, max_length=200)


def build_app(deps: HttpDeps) -> FastAPI:
    app = FastAPI(
        title="allocation-engine HTTP edge",
        version="1",
        description=(
            "Webhooks from sales platforms and REST beside the gRPC API. REST bodies are the "
            "gRPC request messages in the protobuf JSON mapping (proto/allocation/v1)."
        ),
    )
    gate = deps.gate

    @app.exception_handler(AllocationError)
    async def typed_error(request: Request, error: AllocationError) -> JSONResponse:
        status, body, headers = answer_for(error)
        return JSONResponse(body, status, headers=headers)

    @app.exception_handler(Refused)
    async def refused(request: Request, error: Refused) -> JSONResponse:
        return JSONResponse(error_body(error.code, error.message), error.status, error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [
            {
                "field": ".".join(str(p) for p in e["loc"][1:]) or "body",
                "value": str(e.get("input"))[:80],
                "problem": e["msg"],
            }
            for e in error.errors()[:50]
        ]
        message = "; ".join(f"{p['field']}: {p['problem']}" for p in problems[:10])
        return JSONResponse(error_body("INVALID_ARGUMENT", message, problems), 400)

    if deps.metrics is not None:
        metrics = deps.metrics

        @app.middleware("http")
        async def timed(
            request: Request, call_next: Callable[[Request], Awaitable[Response]]
        ) -> Response:
            started = time.perf_counter()
            response = await call_next(request)
            route = request.scope.get("route")
            template = getattr(route, "path", "unmatched")
            metrics.http_duration.labels(template, request.method, response.status_code).observe(
                time.perf_counter() - started
            )
            return response

    @app.get("/healthz", tags=["health"])
    def healthz() -> JSONResponse:
        """SERVING while the backing store answers, else 503 NOT_SERVING."""
        if deps.healthy():
            return JSONResponse({"status": "SERVING"})
        return JSONResponse({"status": "NOT_SERVING"}, 503)

    @app.post("/webhooks/{channel}", tags=["channels"])
    async def webhook(channel: str, request: Request) -> Any:
        """A platform's webhook, exactly as it sent it: verified by the platform's signature
        over the raw body (401 when it does not verify, and nothing is placed), then its
        orders placed once however often it is delivered. 2xx only after they were placed."""
        body = await _body(request)
        headers = dict(request.headers)

        def receive() -> Any:
            with _counted(deps, channel, "webhook"):
                received = _intake(deps).webhook(channel, headers, body)
            return _received(deps, channel, "webhook", received)

        return await run_in_threadpool(receive)

    @app.post("/v1/channels/{channel}/poll", tags=["channels"])
    def poll(channel: str, authorization: Authorization = None) -> Any:
        """Polls the channel's importer now (it also polls on its own schedule)."""
        with gate.admit("/allocation.v1.http/PollChannel", authorization):
            check_channel(current_caller(), channel)
            with _counted(deps, channel, "poll"):
                received = _intake(deps).poll(channel)
            return _received(deps, channel, "poll", received)

    @app.post("/v1/channels/{channel}/sales", tags=["channels"])
    def sale(channel: str, sale: SaleIn, authorization: Authorization = None) -> Any:
        """A POS sale: the store's on-hand goes down at once; the same sale_id twice changes
        it once. `clamped` lists what the books did not hold (on_hand stops at 0)."""
        with gate.admit("/allocation.v1.http/RecordSale", authorization, sale.sale_id):
            caller = current_caller()
            check_channel(caller, channel)
            check_node(caller, sale.store_id)
            outcome = _intake(deps).sale(
                channel,
                Sale(
                    sale.sale_id,
                    sale.store_id,
                    tuple(SaleLine(x.sku, x.quantity) for x in sale.lines),
                ),
            )
            return {
                "levels": [
                    {"node_id": lv.node_id, "sku": lv.sku, "on_hand": lv.on_hand}
                    for lv in outcome.levels
                ],
                # the till sold more than the books held: on_hand stopped at 0 (count it)
                "clamped": [
                    {"node_id": a.node_id, "sku": a.sku, "on_hand_delta": a.on_hand_delta}
                    for a in outcome.clamped
                ],
            }

    @app.post("/v1/orders", tags=["orders"], openapi_extra=_body_schema("PlaceOrderRequest"))
    async def place_order(request: Request, authorization: Authorization = None) -> Any:
        """PlaceOrder: idempotent on (channel, external_order_id)."""
        message = decode(await _body(request), opb.PlaceOrderRequest())

        def place() -> Any:
            with gate.admit(ORDERS + "PlaceOrder", authorization, message.external_order_id):
                return call(deps.orders.PlaceOrder, message)

        return await run_in_threadpool(place)

    @app.get("/v1/orders/{order_id}", tags=["orders"])
    def get_order(order_id: str, authorization: Authorization = None) -> Any:
        """GetOrder: the order, its shipments, payments, returns and timeline."""
        message = decode(b"{}", opb.GetOrderRequest(), {"order_id": order_id})
        with gate.admit(ORDERS + "GetOrder", authorization):
            return call(deps.orders.GetOrder, message)

    @app.post(
        "/v1/orders/{order_id}/shipments/{shipment_id}/ship",
        tags=["orders"],
        openapi_extra=_body_schema("RecordShipmentRequest"),
    )
    async def ship(
        order_id: str, shipment_id: str, request: Request, authorization: Authorization = None
    ) -> Any:
        """RecordShipment: the parcel left with `carrier` and `tracking_number`."""
        message = decode(
            await _body(request),
            opb.RecordShipmentRequest(),
            {"order_id": order_id, "shipment_id": shipment_id},
        )

        def record() -> Any:
            with gate.admit(ORDERS + "RecordShipment", authorization, message.idempotency_key):
                return call(deps.orders.RecordShipment, message)

        return await run_in_threadpool(record)

    return app


def _intake(deps: HttpDeps) -> ChannelIntake:
    if deps.intake is None:
        raise NotFound("channel", "(none: this server runs without --channels FILE)")
    return deps.intake


@contextmanager
def _counted(deps: HttpDeps, channel: str, via: str) -> Iterator[None]:
    """Counts a delivery or poll that failed as `refused` (for configured channels only, so a
    caller posting to made-up channel names cannot grow the metric's label set)."""
    try:
        yield
    except AllocationError:
        known = deps.intake is not None and deps.intake.channels.get(channel) is not None
        if deps.metrics is not None and known:
            deps.metrics.channel_orders.labels(channel, via, "refused").inc()
        raise


def _received(deps: HttpDeps, channel: str, via: str, received: Received) -> Any:
    if deps.metrics is not None:
        counter = deps.metrics.channel_orders
        if received.duplicate:
            counter.labels(channel, via, "duplicate").inc()
        for placed in received.orders:
            counter.labels(channel, via, "placed" if placed.created else "duplicate").inc()
    return {
        "duplicate": received.duplicate,
        "orders": [
            {
                "order_id": p.record.id,
                "external_id": p.record.external_id,
                "state": p.record.state.value,
                "created": p.created,
            }
            for p in received.orders
        ],
    }


async def _body(request: Request) -> bytes:
    """The raw body, refused past the payload limit before it is all read."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_PAYLOAD_BYTES:
        raise LimitExceeded("body", int(declared), MAX_PAYLOAD_BYTES)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_PAYLOAD_BYTES:
            raise LimitExceeded("body", len(body), MAX_PAYLOAD_BYTES)
    return body


def _body_schema(message: str) -> dict[str, Any]:
    """The OpenAPI request body of a route that takes a gRPC request message as JSON."""
    return {
        "requestBody": {
            "required": True,
            "description": f"allocation.v1.{message} in the protobuf JSON mapping",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    }
