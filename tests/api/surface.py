"""The whole gRPC surface for the limit and fuzz tests: one server with every service, a valid
request for every method, a raw caller, and what the server holds (to compare before and after a
refused call).

`Surface` runs the Allocation, Inventory, Rules and Order services over one store (memory, or
Redis with the orders there too) on the tiny network of `tests.support.grpc_inventory`, with a
fake clock and nothing in the background (no sweeper, no health probe, no outbox dispatcher), so
a call is the only thing that can change what the store holds.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import redis
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message

from allocation_engine.adapters.clock import FakeClock
from allocation_engine.adapters.memory.inventory import MemoryStore
from allocation_engine.adapters.payments.fake_provider import FakeCardProvider
from allocation_engine.adapters.redis.inventory import RedisStore
from allocation_engine.api.server import AllocationServer
from allocation_engine.api.servicers.customers import register as register_customers
from allocation_engine.app.orders import OrderConfig, OrderRuntime
from allocation_engine.engine import default_rules
from allocation_engine.engine.rules import default_rules_text
from allocation_engine.proto.allocation.v1 import allocation_pb2 as apb
from allocation_engine.proto.allocation.v1 import common_pb2 as cpb
from allocation_engine.proto.allocation.v1 import customers_pb2 as kpb
from allocation_engine.proto.allocation.v1 import inventory_pb2 as ipb
from allocation_engine.proto.allocation.v1 import orders_pb2 as opb
from allocation_engine.proto.allocation.v1 import promise_pb2 as ppb
from allocation_engine.proto.allocation.v1 import rules_pb2 as rpb
from allocation_engine.service import Services
from allocation_engine.service.feeds.crm import Customers
from tests.support.grpc_inventory import COLOGNE, order, seed_tiny

SERVICES = [
    module.DESCRIPTOR.services_by_name[name]
    for module, name in (
        (apb, "AllocationService"),
        (ipb, "InventoryService"),
        (rpb, "RulesService"),
        (opb, "OrderService"),
        (ppb, "PromiseService"),
        (kpb, "CustomerService"),
    )
]
METHODS: list[MethodDescriptor] = [m for s in SERVICES for m in s.methods]
EMAIL = "ada@example.com"


def path_of(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


def streamed(method: MethodDescriptor) -> bool:
    return bool(method.client_streaming)


def _node(node_id: str = "WH-NEW") -> cpb.Node:
    return cpb.Node(
        id=node_id,
        type=cpb.NODE_TYPE_WAREHOUSE,
        latitude=50.0,
        longitude=8.0,
        country="DE",
        ships_to=["DE"],
        unit_handling_cost=0.5,
        shipment_surcharge=1.0,
        capacity=10,
        tags=["fast"],
    )


def _plan() -> apb.Plan:
    return apb.Plan(
        order_id="o-1",
        status=apb.PLAN_STATUS_OPTIMAL,
        shipments=[
            apb.Shipment(
                node_id="WH-FRA",
                lines=[apb.ShipmentLine(sku="A", quantity=1)],
                distance_km=100.0,
                cost=9.0,
            )
        ],
        total_cost=9.0,
        rules_name="default",
        rules_version="1",
        candidates=2,
        solver_candidates=2,
    )


def _priced(sku: str = "A", quantity: int = 1, price: int = 1990) -> opb.PricedLine:
    return opb.PricedLine(sku=sku, quantity=quantity, unit_price=price, name="Cup")


def base_requests() -> dict[str, Callable[[], Message]]:
    """A valid request for every method (for ApplySnapshot: one chunk), by method name."""
    return {
        "Allocate": lambda: apb.AllocateRequest(
            order=order("o-1", A=1),
            rule_set=rpb.RuleSet(toml=default_rules_text()),
            explain=True,
        ),
        "Reserve": lambda: apb.ReserveRequest(
            idempotency_key="r-1", order=order("o-1", A=1), ttl_seconds=60, plan=_plan()
        ),
        "CommitReservation": lambda: apb.CommitReservationRequest(
            reservation_id="res-1", idempotency_key="c-1"
        ),
        "ReleaseReservation": lambda: apb.ReleaseReservationRequest(
            reservation_id="res-1", idempotency_key="rel-1"
        ),
        "GetReservation": lambda: apb.GetReservationRequest(reservation_id="res-1"),
        "UpsertNodes": lambda: ipb.UpsertNodesRequest(idempotency_key="u-1", nodes=[_node()]),
        "ListNodes": ipb.ListNodesRequest,
        "ApplySnapshot": lambda: ipb.SnapshotChunk(
            version=5,
            positions=[ipb.SnapshotPosition(node_id="WH-FRA", sku="A", on_hand=7, safety_stock=1)],
        ),
        "AdjustInventory": lambda: ipb.AdjustInventoryRequest(
            idempotency_key="a-1",
            adjustments=[ipb.Adjustment(node_id="WH-FRA", sku="A", on_hand_delta=1)],
        ),
        "GetAvailability": lambda: ipb.GetAvailabilityRequest(skus=["A"], node_ids=["WH-FRA"]),
        "PutSupply": lambda: ipb.PutSupplyRequest(
            idempotency_key="s-1",
            lots=[
                ipb.SupplyLot(
                    id="PO-1", node_id="WH-FRA", sku="A", units=4, expected="2027-01-20", held=0
                )
            ],
        ),
        "ListSupply": lambda: ipb.ListSupplyRequest(skus=["A"], node_id="WH-FRA"),
        "ReceiveSupply": lambda: ipb.ReceiveSupplyRequest(
            idempotency_key="g-1", lot_id="PO-1", units=2
        ),
        "ReviseSupply": lambda: ipb.ReviseSupplyRequest(
            idempotency_key="v-1", lot_id="PO-1", units=3, expected="2027-01-22"
        ),
        "GetAvailableToPromise": lambda: ipb.GetAvailableToPromiseRequest(
            sku="A", node_id="WH-FRA", horizon_days=30
        ),
        "GetRules": rpb.GetRulesRequest,
        "ValidateRules": lambda: rpb.ValidateRulesRequest(toml=default_rules_text()),
        "PutRules": lambda: rpb.PutRulesRequest(
            toml=default_rules_text(), expected_revision=1, idempotency_key="p-1"
        ),
        "PlaceOrder": lambda: opb.PlaceOrderRequest(
            channel="web",
            external_order_id="w-1",
            customer=opb.CustomerRef(email=EMAIL, name="Ada Lovelace", language="en"),
            customer_type=cpb.CUSTOMER_TYPE_B2C,
            lines=[_priced()],
            currency="EUR",
            ship_to=COLOGNE,
            address=opb.Address(
                name="Ada Lovelace",
                street="Hohe Strasse 1",
                postal_code="50667",
                city="Koeln",
                country="DE",
            ),
            payment_method="pm_card_visa",
        ),
        "RecordPayment": lambda: opb.RecordPaymentRequest(
            order_id="O-1",
            idempotency_key="pay-1",
            event=opb.PaymentEvent(
                kind=opb.PAYMENT_EVENT_KIND_CAPTURED, amount=1990, reference="ref-1"
            ),
        ),
        "CancelOrder": lambda: opb.CancelOrderRequest(
            order_id="O-1", idempotency_key="cancel-1", reason="changed my mind"
        ),
        "RecordShipment": lambda: opb.RecordShipmentRequest(
            order_id="O-1",
            shipment_id="S-1",
            carrier="DHL",
            tracking_number="00340434",
            idempotency_key="ship-1",
        ),
        "RejectShipment": lambda: opb.RejectShipmentRequest(
            order_id="O-1",
            shipment_id="S-1",
            reason=opb.REJECT_REASON_NO_STOCK,
            idempotency_key="reject-1",
            note="bin empty",
        ),
        "AcceptShipment": lambda: opb.AcceptShipmentRequest(
            order_id="O-1", shipment_id="S-1", idempotency_key="accept-1"
        ),
        "RecordDelivery": lambda: opb.RecordDeliveryRequest(
            order_id="O-1", shipment_id="S-1", idempotency_key="deliver-1"
        ),
        "RequestReturn": lambda: opb.RequestReturnRequest(
            order_id="O-1",
            idempotency_key="return-1",
            items=[opb.ReturnItem(sku="A", quantity=1)],
            reason="too small",
        ),
        "ReceiveReturn": lambda: opb.ReceiveReturnRequest(
            order_id="O-1",
            return_id="R-1",
            node_id="WH-FRA",
            items=[opb.ReturnItem(sku="A", quantity=1)],
            idempotency_key="receive-1",
        ),
        "InspectReturn": lambda: opb.InspectReturnRequest(
            order_id="O-1",
            return_id="R-1",
            inspections=[opb.Inspection(sku="A", restock=1)],
            idempotency_key="inspect-1",
        ),
        "ResumeOrder": lambda: opb.ResumeOrderRequest(order_id="O-1", idempotency_key="resume-1"),
        "GetOrder": lambda: opb.GetOrderRequest(order_id="O-1"),
        "ListOrders": lambda: opb.ListOrdersRequest(email=EMAIL, page_size=10),
        "GetDeliveryOptions": lambda: ppb.GetDeliveryOptionsRequest(
            lines=[cpb.OrderLine(sku="A", quantity=1)],
            ship_to=COLOGNE,
            channel="web",
            customer_type=cpb.CUSTOMER_TYPE_B2C,
            pickup_stores=1,
        ),
        "UpsertCustomer": lambda: kpb.UpsertCustomerRequest(
            customer=kpb.CustomerAccount(
                id="CRM-1",
                email=EMAIL,
                name="Ada",
                customer_type=cpb.CUSTOMER_TYPE_B2B,
                price_terms=kpb.PriceTerms(payment_terms_days=30, discount_basis_points=250),
                delivery=kpb.DeliveryPreferences(pickup_store_id="ST-MUC"),
            )
        ),
        "GetCustomer": lambda: kpb.GetCustomerRequest(email=EMAIL),
    }


BASE = base_requests()


@dataclass
class Answer:
    """How a call ended: its status code, message and trailing metadata size."""

    code: grpc.StatusCode
    message: str
    trailer_bytes: int = 0
    bad_fields: list[str] = field(default_factory=list)


def _answer_of(error: grpc.RpcError) -> Answer:
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    call: Any = error
    status = rpc_status.from_call(call)
    fields: list[str] = []
    for packed in status.details if status else ():
        bad = error_details_pb2.BadRequest()
        if packed.Unpack(bad):
            fields.extend(v.field for v in bad.field_violations)
    trailers = call.trailing_metadata() or ()
    size = sum(len(k) + len(v) for k, v in trailers)
    return Answer(call.code(), call.details() or "", size, fields)


class Surface:
    """A running server with every service over one store; see the module docstring."""

    def __init__(self, store: MemoryStore | RedisStore, orders_url: str | None) -> None:
        self.store = store
        self.redis_url = orders_url
        seed_tiny(store)
        self.clock = FakeClock()
        self.services = Services.build(store, self.clock, default_rules(), default_rules_text())
        self.peer = FakeCardProvider().start()
        self._mail = tempfile.TemporaryDirectory()
        self.runtime = OrderRuntime.build(
            self.services,
            OrderConfig(
                redis_url=orders_url,
                mail_dir=str(Path(self._mail.name) / "mail"),
                wms_dir=str(Path(self._mail.name) / "wms"),
                card_url=self.peer.url,
                card_key=self.peer.api_key,
                webhook_secret=self.peer.webhook_secret,
                dispatch=False,
            ),
            self.clock,
        )
        self.server = AllocationServer(
            self.services,
            port=0,
            health_interval=3600,
            sweep_interval=3600,
            extra=[
                self.runtime.register,
                lambda server: register_customers(
                    Customers(self.runtime.store, self.clock), server
                ),
            ],
        ).start()
        self.channel = grpc.insecure_channel(self.server.address)

    def close(self) -> None:
        self.channel.close()
        self.server.stop(grace=0)
        self.runtime.stop()
        self.peer.stop()
        self._mail.cleanup()

    def call(
        self, method: MethodDescriptor, request: Message | bytes, timeout: float = 20
    ) -> Answer:
        """Calls `method` with `request` (a message, or raw bytes sent as they are)."""
        out = method.output_type._concrete_class
        raw = isinstance(request, bytes)
        serialize: Callable[[Any], bytes] = (
            (lambda b: b) if raw else (lambda m: m.SerializeToString())
        )
        try:
            if streamed(method):
                stub = self.channel.stream_unary(
                    path_of(method),
                    request_serializer=serialize,
                    response_deserializer=out.FromString,
                )
                stub(iter([request]), timeout=timeout)
            else:
                stub = self.channel.unary_unary(
                    path_of(method),
                    request_serializer=serialize,
                    response_deserializer=out.FromString,
                )
                stub(request, timeout=timeout)
        except grpc.RpcError as error:
            return _answer_of(error)
        return Answer(grpc.StatusCode.OK, "")

    def state(self) -> object:
        """What the server holds: every Redis key with its value (orders included), or for the
        memory store what the read RPCs show."""
        if self.redis_url is not None:
            client = redis.Redis.from_url(self.redis_url)
            try:
                return {
                    key: hashlib.sha256(client.dump(key) or b"").hexdigest()
                    for key in sorted(client.scan_iter(count=1000))
                }
            finally:
                client.close()
        reads = [
            ("ListNodes", ipb.ListNodesRequest()),
            ("GetAvailability", ipb.GetAvailabilityRequest(skus=["A", "B"])),
            ("ListSupply", ipb.ListSupplyRequest()),
            ("GetRules", rpb.GetRulesRequest()),
            ("ListOrders", opb.ListOrdersRequest(email=EMAIL, page_size=500)),
        ]
        seen = []
        by_name = {m.name: m for m in METHODS}
        for name, request in reads:
            method = by_name[name]
            stub = self.channel.unary_unary(
                path_of(method),
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=lambda b: b,
            )
            seen.append(stub(request, timeout=10))
        return seen


def surface(kind: str, redis_url: str | None) -> Iterator[Surface]:
    """A `Surface` over `kind` ("memory" or "redis"), closed afterwards."""
    if kind == "memory":
        running = Surface(MemoryStore(), None)
    else:
        assert redis_url is not None
        client = redis.Redis.from_url(redis_url)
        client.flushall()
        client.close()
        running = Surface(RedisStore.from_url(redis_url), redis_url)
    try:
        yield running
    finally:
        running.close()


# the fields of a request, as paths from the request down


@dataclass(frozen=True)
class Step:
    name: str
    repeated: bool


def scalar_paths(descriptor: Descriptor, depth: int = 0) -> Iterator[tuple[Step, ...]]:
    """Every scalar field (and each entry of a repeated scalar) below `descriptor`, as the
    steps from it; a repeated message is entered at index 0."""
    for f in descriptor.fields:
        repeated = f.is_repeated
        if f.message_type is not None:
            if depth < 4 and f.message_type.file.package == "allocation.v1":
                for rest in scalar_paths(f.message_type, depth + 1):
                    yield (Step(f.name, repeated), *rest)
        else:
            yield (Step(f.name, repeated),)


def dotted(steps: tuple[Step, ...], prefix: str = "") -> str:
    parts = [f"{s.name}[0]" if s.repeated else s.name for s in steps]
    return prefix + ".".join(parts)


def leaf(message: Message, steps: tuple[Step, ...]) -> FieldDescriptor:
    target: Any = message
    for step in steps[:-1]:
        target = target.DESCRIPTOR.fields_by_name[step.name].message_type
        target = target._concrete_class()
    return target.DESCRIPTOR.fields_by_name[steps[-1].name]  # type: ignore[no-any-return]


def put(message: Message, steps: tuple[Step, ...], value: Any) -> None:
    """Sets the field at `steps` to `value` (entry 0 of a repeated one, added if missing)."""
    target: Any = message
    for step in steps[:-1]:
        if step.repeated:
            items = getattr(target, step.name)
            target = items[0] if len(items) else items.add()
        else:
            target = getattr(target, step.name)
    last = steps[-1]
    if last.repeated:
        items = getattr(target, last.name)
        if len(items):
            items[0] = value
        else:
            items.append(value)
    else:
        setattr(target, last.name, value)
