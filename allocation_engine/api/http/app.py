"""The HTTP edge: webhooks from shops and marketplaces, REST for systems that speak no gRPC.

Routes (the OpenAPI document is served at /openapi.json, readable at /docs):

    GET  /healthz                                   open: SERVING while the store answers
    POST /webhooks/{channel}                        a platform's webhook, verified by ITS signature
    POST /v1/orders                                 PlaceOrder (orders:place)
    GET  /v1/orders/{order_id}                      GetOrder (orders:read)
    POST /v1/orders/{order_id}/shipments/{id}/ship    RecordShipment (shipments:confirm)
    POST /v1/orders/{order_id}/shipments/{id}/reject  RejectShipment (shipments:confirm)
    POST /v1/orders/{order_id}/shipments/{id}/accept  AcceptShipment (shipments:confirm)
    POST /v1/channels/{channel}/sales               a POS sale off a store's stock (inventory:write)
    POST /v1/channels/{channel}/poll                poll an importer now (orders:manage)
    POST /v1/delivery-options                       GetDeliveryOptions (allocate)
    POST /v1/3pl/shipments                          a 3PL's parcel shipped or rejected
                                                    (shipments:confirm; see api/http/tpl.py)

Handlers are thin, like the servicers: verify, decode into the request message or the domain,
call the same use case, answer. Errors are mapped in one place (`api.http.errors`), callers
admitted in one place (`api.http.gate`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import FastAPI, Header, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from allocation_engine.api.http.errors import answer_for, error_body
from allocation_engine.api.http.gate import HttpGate, Refused
from allocation_engine.api.http.tpl import add_routes as add_tpl_routes
from allocation_engine.api.http.transcode import call, decode, encode
from allocation_engine.api.servicers.orders import OrderServicer
from allocation_engine.api.servicers.promise import PromiseServicer
from allocation_engine.engine.limits import MAX_ID_CHARS, MAX_PAYLOAD_BYTES, MAX_UNITS
from allocation_engine.errors import (
    AllocationError,
    FieldProblem,
    InvalidInput,
    LimitExceeded,
    NotFound,
)
from allocation_engine.observability.metrics import Metrics
from allocation_engine.proto.allocation.v1 import orders_pb2 as opb
from allocation_engine.proto.allocation.v1 import promise_pb2 as ppb
from allocation_engine.service.access import check_channel, check_node, current_caller
from allocation_engine.service.channels.intake import ChannelIntake, Received, Sale, SaleLine

ORDERS = "/allocation.v1.OrderService/"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""HTTP methods the metrics name; any other (a client's invention) is counted as OTHER."""
M = TypeVar("M", bound=BaseModel)
BEARER = HTTPBearer(auto_error=False, description="an API token: Bearer ae_...")
Authorization = Annotated[str | None, Header(description="Bearer <token>")]


@dataclass(frozen=True)
class HttpDeps:
    """What the edge calls: the order servicer (the gRPC edge's own), the channel intake, the
    gate, a health probe, the metrics to record into (None: none kept), and the promise
    servicer for delivery options (None: the route answers 404)."""

    orders: OrderServicer
    intake: ChannelIntake | None
    gate: HttpGate
    healthy: Callable[[], bool]
    metrics: Metrics | None = None
    promise: PromiseServicer | None = None


class Problem(BaseModel):
    field: str = Field(description="the field, named from the request down: lines[0].quantity")
    value: str = Field(description="the value sent, quoted short")
    problem: str


class ErrorBody(BaseModel):
    """Every error the edge answers: the gRPC status code's name, a message, and for bad
    input every problem."""

    code: str = Field(description="INVALID_ARGUMENT, UNAUTHENTICATED, NOT_FOUND, ...")
    message: str
    problems: list[Problem] | None = None


ERRORS = {
    400: "bad input (every field named), or not allowed in the current state",
    401: "no, unknown or revoked token; for a webhook, a signature that does not verify",
    403: "the token lacks the route's scope, or is bound to other channels or nodes",
    404: "unknown order, shipment or channel",
    409: "an idempotency key or external order id reused with another request",
    413: "a body over 1 MiB",
    429: "the caller's rate limit (Retry-After says when), or a request over the limits",
    503: "the store or a platform did not answer; retry",
}


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
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]

    @app.exception_handler(AllocationError)
    async def typed_error(request: Request, error: AllocationError) -> JSONResponse:
        status, body, headers = answer_for(error)
        return JSONResponse(body, status, headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        status, body, headers = answer_for(error)  # logs it: a bug, not the caller's input
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
            method = request.method if request.method in METHODS else "OTHER"
            metrics.http_duration.labels(template, method, response.status_code).observe(
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

    @app.post("/v1/channels/{channel}/poll", tags=["channels"], dependencies=[Security(BEARER)])
    def poll(channel: str, authorization: Authorization = None) -> Any:
        """Polls the channel's importer now (it also polls on its own schedule)."""
        with gate.admit("/allocation.v1.http/PollChannel", authorization):
            check_channel(current_caller(), channel)
            with _counted(deps, channel, "poll"):
                received = _intake(deps).poll(channel)
            return _received(deps, channel, "poll", received)

    @app.post(
        "/v1/channels/{channel}/sales",
        tags=["channels"],
        openapi_extra=_model_body(SaleIn),
        dependencies=[Security(BEARER)],
    )
    async def sale(channel: str, request: Request, authorization: Authorization = None) -> Any:
        """A POS sale: the store's on-hand goes down at once; the same sale_id twice changes
        it once. `clamped` lists what the books did not hold (on_hand stops at 0)."""
        method = "/allocation.v1.http/RecordSale"
        caller = await run_in_threadpool(gate.check, method, authorization)
        body = await _body(request)

        def record() -> Any:
            given = _validated(SaleIn, body)
            with gate.acting(caller, method, given.sale_id):
                check_channel(current_caller(), channel)
                check_node(current_caller(), given.store_id)
                outcome = _intake(deps).sale(
                    channel,
                    Sale(
                        given.sale_id,
                        given.store_id,
                        tuple(SaleLine(x.sku, x.quantity) for x in given.lines),
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

        return await run_in_threadpool(record)

    @app.post(
        "/v1/orders",
        tags=["orders"],
        openapi_extra=_body_schema("PlaceOrderRequest"),
        dependencies=[Security(BEARER)],
    )
    async def place_order(request: Request, authorization: Authorization = None) -> Any:
        """PlaceOrder: idempotent on (channel, external_order_id)."""
        method = ORDERS + "PlaceOrder"
        caller = await run_in_threadpool(gate.check, method, authorization)
        body = await _body(request)

        def place() -> Any:
            message = decode(body, opb.PlaceOrderRequest())
            with gate.acting(caller, method, message.external_order_id):
                return call(deps.orders.PlaceOrder, message)

        return await run_in_threadpool(place)

    @app.get("/v1/orders/{order_id}", tags=["orders"], dependencies=[Security(BEARER)])
    def get_order(order_id: str, authorization: Authorization = None) -> Any:
        """GetOrder: the order, its shipments, payments, returns and timeline."""
        with gate.admit(ORDERS + "GetOrder", authorization):
            message = decode(b"{}", opb.GetOrderRequest(), {"order_id": order_id})
            return call(deps.orders.GetOrder, message)

    def shipment_route(action: str, rpc: str, request_type: Any, doc: str) -> None:
        """POST /v1/orders/{order_id}/shipments/{shipment_id}/{action}: a node's answer to a
        pick list, as the gRPC `rpc` takes it (the ids from the path, the rest from the body)."""

        @app.post(
            f"/v1/orders/{{order_id}}/shipments/{{shipment_id}}/{action}",
            tags=["orders"],
            openapi_extra=_body_schema(request_type.DESCRIPTOR.name),
            dependencies=[Security(BEARER)],
            name=action,
            description=doc,
        )
        async def answer(
            order_id: str, shipment_id: str, request: Request, authorization: Authorization = None
        ) -> Any:
            method = ORDERS + rpc
            caller = await run_in_threadpool(gate.check, method, authorization)
            body = await _body(request)

            def record() -> Any:
                path = {"order_id": order_id, "shipment_id": shipment_id}
                message = decode(body, request_type(), path)
                with gate.acting(caller, method, message.idempotency_key):
                    return call(getattr(deps.orders, rpc), message)

            return await run_in_threadpool(record)

    shipment_route(
        "ship",
        "RecordShipment",
        opb.RecordShipmentRequest,
        "RecordShipment: the parcel left with `carrier` and `tracking_number`; `lines` when "
        "fewer units left than planned (a short pick: the rest is rerouted).",
    )
    shipment_route(
        "reject",
        "RejectShipment",
        opb.RejectShipmentRequest,
        "RejectShipment: the node will not send the parcel (`reason`: REJECT_REASON_NO_STOCK, "
        "_NO_CAPACITY, _DAMAGED, _OTHER); its units are rerouted at once.",
    )
    shipment_route(
        "accept",
        "AcceptShipment",
        opb.AcceptShipmentRequest,
        "AcceptShipment: the node's WMS took the pick list on.",
    )

    @app.post(
        "/v1/delivery-options",
        tags=["checkout"],
        openapi_extra=_body_schema("GetDeliveryOptionsRequest"),
        dependencies=[Security(BEARER)],
    )
    async def delivery_options(request: Request, authorization: Authorization = None) -> Any:
        """GetDeliveryOptions: home delivery and click & collect at the nearest stores for a
        cart, as Allocate would plan each; holds nothing."""
        method = "/allocation.v1.PromiseService/GetDeliveryOptions"
        caller = await run_in_threadpool(gate.check, method, authorization)
        body = await _body(request)

        def answer() -> Any:
            message = decode(body, ppb.GetDeliveryOptionsRequest())
            with gate.acting(caller, method):
                return encode(_promise(deps).answer(message, None))

        return await run_in_threadpool(answer)

    add_tpl_routes(app, gate, deps.orders, BEARER, _body, _validated)
    return app


def _promise(deps: HttpDeps) -> PromiseServicer:
    if deps.promise is None:
        raise NotFound("route", "/v1/delivery-options (this edge serves no PromiseService)")
    return deps.promise


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


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document with the edge's real error answers in place of its default 422."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["ErrorBody"] = ErrorBody.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        components.update(components["ErrorBody"].pop("$defs", {}))
        error = {"$ref": "#/components/schemas/ErrorBody"}
        for path in schema["paths"].values():
            for operation in path.values():
                responses = operation.setdefault("responses", {})
                responses.pop("422", None)
                for status, what in ERRORS.items():
                    responses[str(status)] = {
                        "description": what,
                        "content": {"application/json": {"schema": error}},
                    }
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        app.openapi_schema = schema
    return app.openapi_schema


def _validated(model: type[M], body: bytes) -> M:
    """The `model` in `body` (a sale, a 3PL's parcel), every problem named as the rest of the
    edge names them."""
    try:
        return model.model_validate_json(body or b"{}")
    except ValidationError as bad:
        problems = [
            FieldProblem(".".join(str(p) for p in e["loc"]) or "body", e.get("input"), e["msg"])
            for e in bad.errors()[:50]
        ]
        raise InvalidInput(problems) from None


def _model_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body of a route that reads `model` from its raw body."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


def _body_schema(message: str) -> dict[str, Any]:
    """The OpenAPI request body of a route that takes a gRPC request message as JSON."""
    return {
        "requestBody": {
            "required": True,
            "description": f"allocation.v1.{message} in the protobuf JSON mapping",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    }
