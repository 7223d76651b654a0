"""`allocation-engine order ...`: clients of OrderService (a running `serve`).

order place FILE | pay | cancel | ship | reject | deliver | return | receive | inspect | resume |
      show | list
"""

from __future__ import annotations

import argparse
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

import grpc
from google.protobuf import json_format
from rich.console import Console
from rich.table import Table

from allocation_engine.cli.common import ClientRun, UsageError, add_client, read_json
from allocation_engine.cli.render import (
    event_detail,
    money,
    print_json,
    print_order,
    state_name,
    when,
)
from allocation_engine.engine import InvalidInput
from allocation_engine.orders.commands import REJECT_REASONS
from allocation_engine.proto.allocation.v1 import allocation_pb2 as apb
from allocation_engine.proto.allocation.v1 import orders_pb2 as opb
from allocation_engine.proto.allocation.v1 import orders_pb2_grpc as opb_grpc


def _stub(channel: grpc.Channel) -> opb_grpc.OrderServiceStub:
    return opb_grpc.OrderServiceStub(channel)


def _key(args: argparse.Namespace) -> str:
    return str(args.key or uuid.uuid4())


def _minor(text: str) -> int:
    try:
        cents = Decimal(text) * 100
    except InvalidOperation:
        raise InvalidInput.one("amount", text, "must be an amount such as 89.97") from None
    if cents != cents.to_integral_value():
        raise InvalidInput.one("amount", text, "at most two decimals")
    return int(cents)


def _pairs(items: list[str], field: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items or []:
        sku, _, quantity = item.partition("=")
        if not sku or not quantity.isdigit():
            raise InvalidInput.one(field, item, "must be SKU=QUANTITY")
        out[sku] = int(quantity)
    return out


def _answer(args: argparse.Namespace, response: Any, console: Console) -> int:
    if args.json:
        print_json(response)
    else:
        print_order(response.order, console)
    return 0


def _place(args: argparse.Namespace, channel: grpc.Channel, console: Console) -> int:
    """Places the order in a JSON file (PlaceOrderRequest in protobuf's JSON form)."""
    try:
        request = json_format.ParseDict(read_json(args.file), opb.PlaceOrderRequest())
    except json_format.ParseError as error:
        raise UsageError(f"{args.file}: not a PlaceOrderRequest: {error}") from None
    response = _stub(channel).PlaceOrder(request, timeout=args.timeout)
    if not args.json and not response.created:
        console.print("(placed before: this is the order as it stands)")
    return _answer(args, response, console)


def _pay(args: argparse.Namespace, channel: grpc.Channel, console: Console) -> int:
    kind = {
        "authorized": opb.PAYMENT_EVENT_KIND_AUTHORIZED,
        "captured": opb.PAYMENT_EVENT_KIND_CAPTURED,
        "failed": opb.PAYMENT_EVENT_KIND_FAILED,
    }[args.event]
    request = opb.RecordPaymentRequest(
        order_id=args.order,
        idempotency_key=_key(args),
        event=opb.PaymentEvent(
            kind=kind, amount=_minor(args.amount), reference=args.reference, reason=args.reason
        ),
    )
    return _answer(args, _stub(channel).RecordPayment(request, timeout=args.timeout), console)


def _cancel(args: argparse.Namespace, channel: grpc.Channel, console: Console) -> int:
    request = opb.CancelOrderRequest(
        order_id=args.order, idempotency_key=_key(args), reason=args.reason
    )
    return _answer(args, _stub(channel).CancelOrder(request, timeout=args.timeout), console)


def _ship(args: argparse.Namespace, channel: grpc.Channel, console: Console) -> int:
    request = opb.RecordShipmentRequest(
        order_id=args.order,
        shipment_id=args.shipment,
        carrier=args.carrier,
        tracking_number=args.tracking,
        idempotency_key=_key(args),
        lines=[apb.ShipmentLine(sku=s, quantity=q) for s, q in _pairs(args.sent, "sent").items()],
    )
    return _answer(args, _stub(channel).RecordShipment(request, timeout=args.timeout), console)


def _reject(args: argparse.Namespace, channel: grpc.Channel, console: Console) -> int:
    request = opb.RejectShipmentRequest(
        order_id=args.order,
        shipment_id=args.shipment,
        reason=opb.RejectReason.Value(f"REJECT_REASON_{args.reason.upper()}"),
        idempotency_key=_key(args),
        note=args.note,
    )
    return _answer(args, _stub(channel).RejectShipment(request, timeout=args.timeout), console)


def _deliver(args: argparse.Namespace, channel: grpc.Channel, console: Console) -> int:
    request = opb.RecordDeliveryRequest(
        order_id=args.order, shipment_id=args.shipment, idempotency_key=_key(args)
    )
    return _answer(args, _stub(channel).RecordDelivery(request, timeout=args.timeout), console)


def _return(args: argparse.Namespace, channel: grpc.Channel, console: Console) -> int:
    request = opb.RequestReturnRequest(
        order_id=args.order,
        idempotency_key=_key(args),
        items=[opb.ReturnItem(sku=s, quantity=q) for s, q in _pairs(args.items, "items").items()],
        reason=args.reason,
    )
    response = _stub(channel).RequestReturn(request, timeout=args.timeout)
    if not args.json:
        console.print(f"return {response.return_id} opened")
    return _answer(args, response, console)


def _receive(args: argparse.Namespace, channel: grpc.Channel, console: Console) -> int:
    request = opb.ReceiveReturnRequest(
        order_id=args.order,
        return_id=args.return_id,
        node_id=args.node,
        items=[opb.ReturnItem(sku=s, quantity=q) for s, q in _pairs(args.items, "items").items()],
        idempotency_key=_key(args),
    )
    return _answer(args, _stub(channel).ReceiveReturn(request, timeout=args.timeout), console)


def _inspect(args: argparse.Namespace, channel: grpc.Channel, console: Console) -> int:
    restock = _pairs(args.restock, "--restock")
    write_off = _pairs(args.write_off, "--write-off")
    request = opb.InspectReturnRequest(
        order_id=args.order,
        return_id=args.return_id,
        inspections=[
            opb.Inspection(sku=sku, restock=restock.get(sku, 0), write_off=write_off.get(sku, 0))
            for sku in dict.fromkeys([*restock, *write_off])
        ],
        idempotency_key=_key(args),
    )
    return _answer(args, _stub(channel).InspectReturn(request, timeout=args.timeout), console)


def _resume(args: argparse.Namespace, channel: grpc.Channel, console: Console) -> int:
    request = opb.ResumeOrderRequest(order_id=args.order, idempotency_key=_key(args))
    return _answer(args, _stub(channel).ResumeOrder(request, timeout=args.timeout), console)


def _show(args: argparse.Namespace, channel: grpc.Channel, console: Console) -> int:
    """The order, its customer and its timeline (what customer service looks at)."""
    response = _stub(channel).GetOrder(
        opb.GetOrderRequest(order_id=args.order), timeout=args.timeout
    )
    if args.json:
        print_json(response)
        return 0
    c = response.customer
    print_order(response.order, console)
    console.print(f"  customer {c.id}: {c.name} <{c.email}>, e-mails in {c.language}")
    table = Table(title="timeline", title_justify="left")
    for column in ("#", "at (UTC)", "event", "details", "sent"):
        table.add_column(column)
    for e in response.timeline:
        detail = event_detail(json_format.MessageToDict(e.data), response.order.currency)
        table.add_row(str(e.seq), when(e.at), e.type, detail, e.delivery)
    console.print(table)
    return 0


def _list(args: argparse.Namespace, channel: grpc.Channel, console: Console) -> int:
    state = (
        opb.OrderState.Value(f"ORDER_STATE_{args.state}")
        if args.state
        else opb.ORDER_STATE_UNSPECIFIED
    )
    request = opb.ListOrdersRequest(
        customer_id=args.customer or "",
        email=args.email or "",
        state=state,
        page_size=args.limit,
    )
    response = _stub(channel).ListOrders(request, timeout=args.timeout)
    if args.json:
        print_json(response)
        return 0
    table = Table()
    for column in ("order", "external id", "customer", "state", "workflow", "total", "payment"):
        table.add_column(column)
    for o in response.orders:
        table.add_row(
            o.id,
            f"{o.channel} {o.external_order_id}",
            o.customer_id,
            state_name(opb.OrderState, o.state, "ORDER_STATE_"),
            f"{o.workflow} {state_name(opb.WorkflowStatus, o.workflow_status, 'WORKFLOW_STATUS_')}",
            money(o.total, o.currency),
            state_name(opb.PaymentState, o.payment.state, "PAYMENT_STATE_"),
        )
    console.print(table)
    return 0


def register(sub: Any) -> None:
    """Adds `order` and its subcommands."""
    order = sub.add_parser("order", help="place orders and move them through their workflow")
    osub = order.add_subparsers(dest="order_command", required=True)

    def client(name: str, help: str, run: ClientRun, mutating: bool = True) -> Any:
        return add_client(osub, name, help, run, mutating=mutating)

    place = client("place", "place an order (PlaceOrderRequest JSON)", _place, False)
    place.add_argument("file", help="see examples/order-b2c.json and examples/order-b2b.json")

    pay = client("pay", "record a payment event", _pay)
    pay.add_argument("order")
    pay.add_argument("event", choices=("authorized", "captured", "failed"))
    pay.add_argument("--amount", default="0", help="in major units, e.g. 89.97")
    pay.add_argument("--reference", default="", help="the provider's payment reference")
    pay.add_argument("--reason", default="", help="why it failed")

    cancel = client("cancel", "cancel an order not yet at the warehouse", _cancel)
    cancel.add_argument("order")
    cancel.add_argument("--reason", default="")

    ship = client("ship", "a parcel left (carrier and tracking number)", _ship)
    ship.add_argument("order")
    ship.add_argument("shipment")
    ship.add_argument("--carrier", required=True)
    ship.add_argument("--tracking", required=True)
    ship.add_argument(
        "--sent",
        action="append",
        default=[],
        help="SKU=QUANTITY that left, when fewer than planned (a short pick: the rest is rerouted)",
    )

    reject = client("reject", "the node will not send a parcel: its units are rerouted", _reject)
    reject.add_argument("order")
    reject.add_argument("shipment")
    reject.add_argument("--reason", required=True, choices=REJECT_REASONS)
    reject.add_argument("--note", default="", help="the node's words, kept on the timeline")

    deliver = client("deliver", "a parcel arrived", _deliver)
    deliver.add_argument("order")
    deliver.add_argument("shipment")

    ret = client("return", "open a return: SKU=QUANTITY ...", _return)
    ret.add_argument("order")
    ret.add_argument("items", nargs="+")
    ret.add_argument("--reason", default="")

    receive = client("receive", "a return arrived at a node: SKU=QUANTITY ...", _receive)
    receive.add_argument("order")
    receive.add_argument("return_id")
    receive.add_argument("items", nargs="+")
    receive.add_argument("--node", required=True, help="the node that received it")

    inspect = client("inspect", "restock or write off what came back", _inspect)
    inspect.add_argument("order")
    inspect.add_argument("return_id")
    inspect.add_argument("--restock", action="append", default=[], help="SKU=QUANTITY")
    inspect.add_argument("--write-off", action="append", default=[], help="SKU=QUANTITY")

    resume = client("resume", "retry a blocked step", _resume)
    resume.add_argument("order")

    show = client("show", "the order with its timeline", _show, False)
    show.add_argument("order")

    listing = client("list", "orders by customer or state, newest first", _list, False)
    listing.add_argument("--customer")
    listing.add_argument("--email")
    listing.add_argument("--state", help="PLACED, RELEASED, SHIPPED, DELIVERED, ...")
    listing.add_argument("--limit", type=int, default=50)
