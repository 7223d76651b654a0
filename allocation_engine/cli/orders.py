"""TODO docstring."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import socket
import sys
import threading
import uuid
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import FrameType
from typing import Any

import grpc
from google.protobuf import json_format
from rich.console import Console
from rich.table import Table

from allocation_engine.cli.common import DEFAULT_TARGET, client_command
from allocation_engine.cli.render import print_json
from allocation_engine.cli.serve import CARD_KEY_ENV
from allocation_engine.engine import InvalidInput
from allocation_engine.orders.definition import default_workflows_text, load_workflows
from allocation_engine.proto.allocation.v1 import orders_pb2 as opb
from allocation_engine.proto.allocation.v1 import orders_pb2_grpc as opb_grpc


def _delivery_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--smtp", help="mail server host:port (default: .eml files, --mail-dir)")
    parser.add_argument("--mail-from", default="shop@allocation-engine.local", help="sender")
    parser.add_argument("--mail-dir", default="var/mail", help="where e-mails go without --smtp")
    parser.add_argument("--wms-dir", default="var/wms", help="pick lists, one folder per node")
    parser.add_argument("--wms-url", help="POST pick lists here ({node_id} is replaced)")
    parser.add_argument(
        "--lease", type=float, default=30.0, help="seconds before an unacknowledged event retries"
    )


def _cmd_outbox(args: argparse.Namespace) -> int:
    """Sends e-mails and pick lists from the Redis event log until SIGTERM."""
    from allocation_engine.adapters.mail.notifier import FolderNotifier, MailRenderer, SmtpNotifier
    from allocation_engine.adapters.redis.orders import RedisOrders
    from allocation_engine.adapters.wms import FolderWms, HttpWms
    from allocation_engine.service.outbox import Dispatcher

    renderer = MailRenderer(args.mail_from)
    notifier: Any
    if args.smtp:
        host, _, port = args.smtp.rpartition(":")
        notifier = SmtpNotifier(host or "127.0.0.1", int(port), renderer)
    else:
        notifier = FolderNotifier(args.mail_dir, renderer)
    wms = HttpWms(args.wms_url) if args.wms_url else FolderWms(args.wms_dir)
    store = RedisOrders.from_url(args.redis_url, args.lease)
    consumer = args.consumer or f"{socket.gethostname()}-{os.getpid()}"
    dispatcher = Dispatcher(store, notifier, wms, consumer)
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"outbox dispatcher {consumer} on {args.redis_url}", flush=True)
    while not stopping.is_set():
        dispatcher.run_once(wait_seconds=0.5)
    return 0


def _cmd_workflows_check(args: argparse.Namespace) -> int:
    from allocation_engine.adapters.mail.notifier import MailRenderer

    try:
        workflows = load_workflows(args.file, MailRenderer("check@localhost").templates())
    except InvalidInput as bad:
        print(f"{args.file}: {len(bad.problems)} problem(s)", file=sys.stderr)
        for problem in bad.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    for w in workflows.workflows:
        steps = " -> ".join(s.kind for s in w.steps)
        print(f"{w.name} ({w.payment}): {steps}")
    return 0


def _cmd_workflows_show(args: argparse.Namespace) -> int:
    print(default_workflows_text(), end="")
    return 0


def _stub(channel: grpc.Channel) -> opb_grpc.OrderServiceStub:
    return opb_grpc.OrderServiceStub(channel)


def _key(args: argparse.Namespace) -> str:
    return str(args.key or uuid.uuid4())


def _money(minor: int, currency: str) -> str:
    return f"{minor / 100:.2f} {currency}"


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


def _when(stamp: Any) -> str:
    if not stamp.seconds and not stamp.nanos:
        return ""
    moment = dt.datetime.fromtimestamp(stamp.seconds, dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _name(enum: Any, value: int, prefix: str) -> str:
    return str(enum.Name(value)).removeprefix(prefix)


def _print_order(order: opb.OrderView, console: Console) -> None:
    p = order.payment
    status = _name(opb.WorkflowStatus, order.workflow_status, "WORKFLOW_STATUS_")
    step = f" at {order.current_step}" if order.current_step else ""
    console.print(
        f"[bold]order {order.id}[/bold] ({order.channel} {order.external_order_id}, "
        f"customer {order.customer_id}): {_name(opb.OrderState, order.state, 'ORDER_STATE_')}; "
        f"workflow {order.workflow} {status}{step}"
        + (f" ({order.blocked_reason})" if order.blocked_reason else "")
    )
    console.print(
        f"  payment {p.provider} {p.reference}: "
        f"{_name(opb.PaymentState, p.state, 'PAYMENT_STATE_')}, owed "
        f"{_money(p.amount, order.currency)}, captured {_money(p.captured, order.currency)}, "
        f"refunded {_money(p.refunded, order.currency)}"
        + (f", credited {_money(p.credited, order.currency)}" if p.credited else "")
        + (f" [red]{p.failure}[/red]" if p.failure else "")
    )
    if order.shipments:
        table = Table(title="shipments", title_justify="left")
        for column in ("shipment", "node", "lines", "state", "carrier", "tracking"):
            table.add_column(column)
        for s in order.shipments:
            table.add_row(
                s.id,
                s.node_id,
                ", ".join(f"{x.quantity} x {x.sku}" for x in s.lines),
                _name(opb.ShipmentState, s.state, "SHIPMENT_STATE_"),
                s.carrier,
                s.tracking_number,
            )
        console.print(table)
    for r in order.returns:
        lines = ", ".join(
            f"{x.sku}: {x.requested} asked, {x.received} in, {x.restocked} restocked, "
            f"{x.written_off} written off"
            for x in r.lines
        )
        console.print(
            f"  return {r.id} ({_name(opb.ReturnState, r.state, 'RETURN_STATE_')}"
            f"{' at ' + r.node_id if r.node_id else ''}): {lines}; "
            f"refund {_money(r.refund, order.currency)}"
        )


def _answer(args: argparse.Namespace, response: Any, console: Console) -> int:
    if args.json:
        print_json(response)
    else:
        _print_order(response.order, console)
    return 0


@client_command
def _cmd_place(args: argparse.Namespace, channel: grpc.Channel, console: Console) -> int:
    """Places the order in a JSON file (PlaceOrderRequest in protobuf's JSON form)."""
    request = json_format.ParseDict(
        json.loads(Path(args.file).read_text()), opb.PlaceOrderRequest()
    )
    response = _stub(channel).PlaceOrder(request, timeout=args.timeout)
    if not args.json and not response.created:
        console.print("(placed before: this is the order as it stands)")
    return _answer(args, response, console)


@client_command
def _cmd_pay(args: argparse.Namespace, channel: grpc.Channel, console: Console) -> int:
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


@client_command
def _cmd_cancel(args: argparse.Namespace, channel: grpc.Channel, console: Console) -> int:
    request = opb.CancelOrderRequest(
        order_id=args.order, idempotency_key=_key(args), reason=args.reason
    )
    return _answer(args, _stub(channel).CancelOrder(request, timeout=args.timeout), console)


@client_command
def _cmd_ship(args: argparse.Namespace, channel: grpc.Channel, console: Console) -> int:
    request = opb.RecordShipmentRequest(
        order_id=args.order,
        shipment_id=args.shipment,
        carrier=args.carrier,
        tracking_number=args.tracking,
        idempotency_key=_key(args),
    )
    return _answer(args, _stub(channel).RecordShipment(request, timeout=args.timeout), console)


@client_command
def _cmd_deliver(args: argparse.Namespace, channel: grpc.Channel, console: Console) -> int:
    request = opb.RecordDeliveryRequest(
        order_id=args.order, shipment_id=args.shipment, idempotency_key=_key(args)
    )
    return _answer(args, _stub(channel).RecordDelivery(request, timeout=args.timeout), console)


@client_command
def _cmd_return(args: argparse.Namespace, channel: grpc.Channel, console: Console) -> int:
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


@client_command
def _cmd_receive(args: argparse.Namespace, channel: grpc.Channel, console: Console) -> int:
    request = opb.ReceiveReturnRequest(
        order_id=args.order,
        return_id=args.return_id,
        node_id=args.node,
        items=[opb.ReturnItem(sku=s, quantity=q) for s, q in _pairs(args.items, "items").items()],
        idempotency_key=_key(args),
    )
    return _answer(args, _stub(channel).ReceiveReturn(request, timeout=args.timeout), console)


@client_command
def _cmd_inspect(args: argparse.Namespace, channel: grpc.Channel, console: Console) -> int:
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


@client_command
def _cmd_resume(args: argparse.Namespace, channel: grpc.Channel, console: Console) -> int:
    request = opb.ResumeOrderRequest(order_id=args.order, idempotency_key=_key(args))
    return _answer(args, _stub(channel).ResumeOrder(request, timeout=args.timeout), console)


@client_command
def _cmd_show(args: argparse.Namespace, channel: grpc.Channel, console: Console) -> int:
    """The order, its customer and its timeline (what customer service looks at)."""
    response = _stub(channel).GetOrder(
        opb.GetOrderRequest(order_id=args.order), timeout=args.timeout
    )
    if args.json:
        print_json(response)
        return 0
    c = response.customer
    _print_order(response.order, console)
    console.print(f"  customer {c.id}: {c.name} <{c.email}>, e-mails in {c.language}")
    table = Table(title="timeline", title_justify="left")
    for column in ("#", "at (UTC)", "event", "details", "sent"):
        table.add_column(column)
    for e in response.timeline:
        detail = _detail(json_format.MessageToDict(e.data), response.order.currency)
        table.add_row(str(e.seq), _when(e.at), e.type, detail, e.delivery)
    console.print(table)
    return 0


QUIET = frozenset({"key", "name", "language", "order_id", "external_order_id", "delivery_mode"})


MONEY = frozenset({"amount", "total", "refund"})


def _detail(data: dict[str, Any], currency: str) -> str:
    """One line per event: its plain values (money formatted); lists and tables counted."""
    parts = []
    for key, value in data.items():
        if key in QUIET:
            continue
        if isinstance(value, list):
            parts.append(f"{len(value)} {key}")
        elif isinstance(value, dict):
            continue
        elif key in MONEY and isinstance(value, float):
            parts.append(f"{key} {_money(int(value), currency)}")
        elif isinstance(value, float) and value.is_integer():
            parts.append(f"{key} {int(value)}")
        elif value not in ("", None):
            parts.append(f"{key} {value}")
    return ", ".join(parts)


@client_command
def _cmd_list(args: argparse.Namespace, channel: grpc.Channel, console: Console) -> int:
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
            _name(opb.OrderState, o.state, "ORDER_STATE_"),
            f"{o.workflow} {_name(opb.WorkflowStatus, o.workflow_status, 'WORKFLOW_STATUS_')}",
            _money(o.total, o.currency),
            _name(opb.PaymentState, o.payment.state, "PAYMENT_STATE_"),
        )
    console.print(table)
    return 0


def add_workflow_commands(sub: Any) -> None:
    """Registers `order`, `workflows` and `outbox`, and the workflow options of `serve`."""
    serve = sub.choices.get("serve")
    if serve is not None:
        group = serve.add_argument_group("order workflows")
        group.add_argument("--workflows", help="workflow TOML (default: the shipped workflows)")
        group.add_argument("--card-url", help=f"PaymentIntent-style API; key in ${CARD_KEY_ENV}")
        group.add_argument("--no-outbox", action="store_true", help="run no dispatcher here")
        _delivery_options(group)

    outbox = sub.add_parser("outbox", help="send e-mails and pick lists from the Redis event log")
    outbox.add_argument("--redis-url", required=True)
    outbox.add_argument("--consumer", help="consumer name (default: host-pid)")
    _delivery_options(outbox)
    outbox.set_defaults(func=_cmd_outbox)

    workflows = sub.add_parser("workflows", help="check or show workflow files")
    wsub = workflows.add_subparsers(dest="workflows_command", required=True)
    check = wsub.add_parser("check", help="validate a workflow file; every problem is named")
    check.add_argument("file")
    check.set_defaults(func=_cmd_workflows_check)
    wsub.add_parser("show", help="print the shipped workflows").set_defaults(
        func=_cmd_workflows_show
    )

    order = sub.add_parser("order", help="place orders and move them through their workflow")
    osub = order.add_subparsers(dest="order_command", required=True)

    def client(name: str, help: str, func: Any, mutating: bool = True) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = osub.add_parser(name, help=help)
        parser.add_argument("--target", default=DEFAULT_TARGET, help="server host:port")
        parser.add_argument("--timeout", type=float, default=30.0, help="deadline in seconds")
        parser.add_argument("--json", action="store_true", help="machine-readable output")
        if mutating:
            parser.add_argument("--key", help="idempotency key (default: a new one)")
        parser.set_defaults(func=func)
        return parser

    place = client("place", "place an order (PlaceOrderRequest JSON)", _cmd_place, False)
    place.add_argument("file", help="see examples/order-b2c.json and examples/order-b2b.json")

    pay = client("pay", "record a payment event", _cmd_pay)
    pay.add_argument("order")
    pay.add_argument("event", choices=("authorized", "captured", "failed"))
    pay.add_argument("--amount", default="0", help="in major units, e.g. 89.97")
    pay.add_argument("--reference", default="", help="the provider's payment reference")
    pay.add_argument("--reason", default="", help="why it failed")

    cancel = client("cancel", "cancel an order not yet at the warehouse", _cmd_cancel)
    cancel.add_argument("order")
    cancel.add_argument("--reason", default="")

    ship = client("ship", "a parcel left (carrier and tracking number)", _cmd_ship)
    ship.add_argument("order")
    ship.add_argument("shipment")
    ship.add_argument("--carrier", required=True)
    ship.add_argument("--tracking", required=True)

    deliver = client("deliver", "a parcel arrived", _cmd_deliver)
    deliver.add_argument("order")
    deliver.add_argument("shipment")

    ret = client("return", "open a return: SKU=QUANTITY ...", _cmd_return)
    ret.add_argument("order")
    ret.add_argument("items", nargs="+")
    ret.add_argument("--reason", default="")

    receive = client("receive", "a return arrived at a node: SKU=QUANTITY ...", _cmd_receive)
    receive.add_argument("order")
    receive.add_argument("return_id")
    receive.add_argument("items", nargs="+")
    receive.add_argument("--node", required=True, help="the node that received it")

    inspect = client("inspect", "restock or write off what came back", _cmd_inspect)
    inspect.add_argument("order")
    inspect.add_argument("return_id")
    inspect.add_argument("--restock", action="append", default=[], help="SKU=QUANTITY")
    inspect.add_argument("--write-off", action="append", default=[], help="SKU=QUANTITY")

    resume = client("resume", "retry a blocked step", _cmd_resume)
    resume.add_argument("order")

    show = client("show", "the order with its timeline", _cmd_show, False)
    show.add_argument("order")

    listing = client("list", "orders by customer or state, newest first", _cmd_list, False)
    listing.add_argument("--customer")
    listing.add_argument("--email")
    listing.add_argument("--state", help="PLACED, RELEASED, SHIPPED, DELIVERED, ...")
    listing.add_argument("--limit", type=int, default=50)
