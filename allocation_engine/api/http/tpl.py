"""The 3PL's route on the HTTP edge: `POST /v1/3pl/shipments`, a parcel shipped (with the units
that left) or rejected, in the JSON format of docs/feeds.md.

The body is read into a `ShipmentReport` and answered by the order servicer's own
RecordShipment or RejectShipment (`api.convert.tpl`), so access (the caller needs
shipments:confirm; one bound to nodes reports only its nodes' parcels), ranges and idempotency
are the RPCs'.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

from fastapi import FastAPI, Request, Security
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from allocation_engine.api.convert.tpl import record_request, reject_request
from allocation_engine.api.http.gate import HttpGate
from allocation_engine.api.http.transcode import call
from allocation_engine.api.servicers.orders import OrderServicer
from allocation_engine.engine.limits import MAX_ID_CHARS, MAX_TEXT_CHARS, MAX_UNITS
from allocation_engine.orders.model import ShipmentItem
from allocation_engine.service.feeds.tpl import ShipmentReport, check_report

ORDERS = "/allocation.v1.OrderService/"
Id = Field(min_length=1, max_length=MAX_ID_CHARS)


class ShippedLineIn(BaseModel):
    sku: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    quantity: int = Field(ge=0, le=MAX_UNITS, description="units of the sku that left")


class ShipmentIn(BaseModel):
    """A parcel the 3PL was given: shipped (carrier, tracking and, when fewer units left than
    planned, the lines that left) or rejected (reason, and a note)."""

    order_id: str = Id
    shipment_id: str = Id
    status: Literal["shipped", "rejected"]
    lines: list[ShippedLineIn] = Field(default_factory=list, max_length=200)
    carrier: str = Field(default="", max_length=MAX_ID_CHARS)
    tracking: str = Field(default="", max_length=MAX_ID_CHARS)
    reason: Literal["", "no_stock", "no_capacity", "damaged", "other"] = ""
    note: str = Field(default="", max_length=MAX_TEXT_CHARS)


def add_routes(
    app: FastAPI,
    gate: HttpGate,
    orders: OrderServicer,
    bearer: Any,
    read_body: Callable[[Request], Awaitable[bytes]],
    validated: Callable[[type[ShipmentIn], bytes], ShipmentIn],
) -> None:
    """Adds POST /v1/3pl/shipments to `app`; `read_body` and `validated` are the edge's own
    (a body bounded in size, read after the caller is admitted; problems named as elsewhere)."""

    @app.post(
        "/v1/3pl/shipments",
        tags=["3pl"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ShipmentIn.model_json_schema()}},
            }
        },
        dependencies=[Security(bearer)],
    )
    async def shipment(request: Request, authorization: str | None = None) -> Any:
        """A 3PL's parcel: shipped (a short pick when fewer units left than planned: the rest
        is rerouted) or rejected (all of it is rerouted). The same report twice answers once."""
        admitted = ORDERS + "RecordShipment"  # the scope of both: shipments:confirm
        caller = await run_in_threadpool(gate.check, admitted, request.headers.get("authorization"))
        report = _report(validated(ShipmentIn, await read_body(request)))
        rejected = report.status == "rejected"
        method = ORDERS + ("RejectShipment" if rejected else "RecordShipment")

        def record() -> Any:
            with gate.acting(caller, method, report.idempotency_key):
                if rejected:
                    return call(orders.RejectShipment, reject_request(report))
                return call(orders.RecordShipment, record_request(report))

        return await run_in_threadpool(record)


def _report(given: ShipmentIn) -> ShipmentReport:
    """The report the body holds, checked as the flow's requests cannot check it."""
    report = ShipmentReport(
        given.order_id,
        given.shipment_id,
        given.status,
        tuple(ShipmentItem(x.sku, x.quantity) for x in given.lines),
        given.carrier,
        given.tracking,
        given.reason,
        given.note,
    )
    check_report(report)
    return report
