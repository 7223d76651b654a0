"""The contract's ranges at the gRPC edge: every field of every request, checked before any work.

`FIELDS` gives each field of each allocation.v1 request message (and of the messages inside them)
its range, from the numbers in `engine.limits`: integers and doubles an interval (doubles finite),
strings and bytes a length, rule set TOML a length and a nesting depth, repeated fields a count
(beyond it RESOURCE_EXHAUSTED, as `Limits` says) and a range for each entry. Enum fields must hold
a value the enum defines. A test fails when a request field has no entry, so a new field cannot
arrive unbounded.

`BoundsInterceptor` runs `check` on every request (each message of a stream, named `chunks[i].`)
before the handler sees it, so a value past its range is INVALID_ARGUMENT naming the field
(`order.lines[0].quantity`), and nothing refused reads or writes anything. What needs state or
knowledge of the domain (an unknown node, a repeated sku, a missing e-mail) stays with the use
cases; this is only the contract's outer fence.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

import grpc
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from allocation_engine.api.handlers import Behavior, rewrapped
from allocation_engine.api.request import Limits
from allocation_engine.engine.limits import (
    MAX_COST,
    MAX_EMAIL_CHARS,
    MAX_ID_CHARS,
    MAX_MONEY,
    MAX_PAGE_SIZE,
    MAX_PAYLOAD_BYTES,
    MAX_PLAN_NUMBER,
    MAX_RULES_CHARS,
    MAX_RULES_NESTING,
    MAX_TEXT_CHARS,
    MAX_TTL_SECONDS,
    MAX_UNITS,
    MAX_VERSION,
)
from allocation_engine.engine.supply import MAX_SUPPLY_DAYS
from allocation_engine.errors import FieldProblem, InvalidInput, LimitExceeded
from allocation_engine.service.feeds.crm import MAX_BASIS_POINTS, MAX_PAYMENT_TERMS_DAYS
from allocation_engine.service.promise import MAX_PICKUP_STORES

PACKAGE = "allocation.v1"
INT32_MAX = 2**31 - 1
MAX_COUNT = 2**53 - 1  # counts a plan carries back (shortfall units): exact as a double
MAX_PROBLEMS = 100  # problems collected before the walk stops (the status lists fewer)


@dataclass(frozen=True)
class Whole:
    """An integer in [lo, hi]."""

    lo: int
    hi: int

    def admits(self, value: Any) -> bool:
        return bool(self.lo <= value <= self.hi)

    def problem(self, value: Any) -> str:
        return f"must be an integer in [{self.lo}, {self.hi}]"


@dataclass(frozen=True)
class Real:
    """A finite double in [lo, hi]."""

    lo: float
    hi: float

    def admits(self, value: Any) -> bool:
        return bool(self.lo <= value <= self.hi)  # NaN compares false; inf is past any hi

    def problem(self, value: Any) -> str:
        return f"must be a finite number in [{self.lo:g}, {self.hi:g}]"


@dataclass(frozen=True)
class Text:
    """A string of at most `max_chars` characters."""

    max_chars: int

    def admits(self, value: Any) -> bool:
        return len(value) <= self.max_chars

    def problem(self, value: Any) -> str:
        return f"has {len(value)} characters; at most {self.max_chars}"


@dataclass(frozen=True)
class Blob:
    """Bytes, at most `max_bytes` of them."""

    max_bytes: int

    def admits(self, value: Any) -> bool:
        return len(value) <= self.max_bytes

    def problem(self, value: Any) -> str:
        return f"has {len(value)} bytes; at most {self.max_bytes}"


@dataclass(frozen=True)
class Toml:
    """Rule set TOML: at most `max_chars` characters, arrays, tables and dotted keys nested at
    most `nesting` deep. Bad syntax is left to the rules use case, which names it."""

    max_chars: int
    nesting: int

    def admits(self, value: Any) -> bool:
        return self._problem(value) is None

    def problem(self, value: Any) -> str:
        return self._problem(value) or ""

    def _problem(self, text: str) -> str | None:
        if len(text) > self.max_chars:
            return f"has {len(text)} characters; at most {self.max_chars}"
        too_deep = f"nests deeper than {self.nesting} levels"
        if bracket_depth(text) > self.nesting:
            return too_deep
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            return None
        except RecursionError:  # pragma: no cover - the bracket scan refuses these first
            return too_deep
        return too_deep if data_depth(data) > self.nesting else None


Bound = Whole | Real | Text | Blob | Toml


@dataclass(frozen=True)
class Many:
    """A repeated field: at most `limit` entries (a `Limits` attribute, or a number; None =
    what the message size allows), each within `each` (scalar entries only)."""

    limit: str | int | None
    each: Bound | None = None

    def most(self, limits: Limits) -> int | None:
        return getattr(limits, self.limit) if isinstance(self.limit, str) else self.limit


Spec = Bound | Many

ID = Text(MAX_ID_CHARS)
EMAIL = Text(MAX_EMAIL_CHARS)
TEXT = Text(MAX_TEXT_CHARS)
UNITS = Whole(0, MAX_UNITS)
QUANTITY = Whole(1, MAX_UNITS)
MONEY = Whole(0, MAX_MONEY)
VERSION = Whole(1, MAX_VERSION)
REVISION = Whole(0, MAX_VERSION)
LATITUDE = Real(-90.0, 90.0)
LONGITUDE = Real(-180.0, 180.0)
COST = Real(0.0, float(MAX_COST))
PLAN_COST = Real(-MAX_PLAN_NUMBER, MAX_PLAN_NUMBER)
PLAN_MEASURE = Real(0.0, MAX_PLAN_NUMBER)
TOML = Toml(MAX_RULES_CHARS, MAX_RULES_NESTING)
DATE = Text(len("YYYY-MM-DD"))  # an ISO date; its calendar is checked where it is read
LINES = "max_lines_per_order"

FIELDS: Mapping[str, Mapping[str, Spec]] = {
    # common.proto
    "Node": {
        "id": ID,
        "latitude": LATITUDE,
        "longitude": LONGITUDE,
        "country": ID,
        "ships_to": Many("max_countries_per_node", ID),
        "unit_handling_cost": COST,
        "shipment_surcharge": COST,
        "capacity": Whole(0, INT32_MAX),
        "tags": Many("max_tags_per_node", ID),
    },
    "OrderLine": {"sku": ID, "quantity": QUANTITY, "ship_group": ID},
    "ShipTo": {"latitude": LATITUDE, "longitude": LONGITUDE, "country": ID, "postal_code": ID},
    "Order": {"id": ID, "lines": Many(LINES), "channel": ID, "pickup_store_id": ID},
    "Shortfall": {"sku": ID, "requested": Whole(0, MAX_COUNT), "available": Whole(0, MAX_COUNT)},
    # inventory.proto
    "UpsertNodesRequest": {"idempotency_key": ID, "nodes": Many("max_nodes_per_request")},
    "SnapshotPosition": {"node_id": ID, "sku": ID, "on_hand": UNITS, "safety_stock": UNITS},
    "SnapshotChunk": {
        "version": VERSION,
        "positions": Many("max_positions_per_chunk"),
        "total_chunks": Whole(0, INT32_MAX),
    },
    "Adjustment": {
        "node_id": ID,
        "sku": ID,
        "on_hand_delta": Whole(-MAX_UNITS, MAX_UNITS),
        "safety_stock": UNITS,
    },
    "AdjustInventoryRequest": {
        "idempotency_key": ID,
        "adjustments": Many("max_positions_per_chunk"),
    },
    "GetAvailabilityRequest": {
        "skus": Many("max_skus_per_read", ID),
        "node_ids": Many("max_nodes_per_request", ID),
    },
    "SupplyLot": {
        "id": ID,
        "node_id": ID,
        "sku": ID,
        "units": UNITS,
        "expected": DATE,
        "held": UNITS,
    },
    "PutSupplyRequest": {"idempotency_key": ID, "lots": Many("max_positions_per_chunk")},
    "ListSupplyRequest": {"skus": Many("max_skus_per_read", ID), "node_id": ID},
    "ReceiveSupplyRequest": {"idempotency_key": ID, "lot_id": ID, "units": QUANTITY},
    "ReviseSupplyRequest": {
        "idempotency_key": ID,
        "lot_id": ID,
        "units": UNITS,
        "expected": DATE,
    },
    "GetAvailableToPromiseRequest": {
        "sku": ID,
        "node_id": ID,
        "horizon_days": Whole(0, MAX_SUPPLY_DAYS),
    },
    # allocation.proto
    "ShipmentLine": {"sku": ID, "quantity": UNITS},
    "Shipment": {
        "node_id": ID,
        "lines": Many(LINES),
        "distance_km": PLAN_MEASURE,
        "cost": PLAN_COST,
        "transfer_to": ID,
        "ship_day": Whole(0, MAX_SUPPLY_DAYS),
        "lots": Many(LINES),
    },
    "LotTake": {"lot_id": ID, "sku": ID, "units": UNITS},
    "Explanation": {"node_id": ID, "reason": ID, "detail": TEXT},
    "Plan": {
        "order_id": ID,
        "shipments": Many("max_nodes_per_request"),
        "total_cost": PLAN_COST,
        "optimality_gap": PLAN_MEASURE,
        "unfilled": Many(LINES),
        "shortfalls": Many(LINES),
        "explanations": Many(None),
        "rules_name": ID,
        "rules_version": ID,
        "candidates": Whole(0, INT32_MAX),
        "solver_candidates": Whole(0, INT32_MAX),
    },
    "ReserveRequest": {"idempotency_key": ID, "ttl_seconds": Whole(0, MAX_TTL_SECONDS)},
    "CommitReservationRequest": {"reservation_id": ID, "idempotency_key": ID},
    "ReleaseReservationRequest": {"reservation_id": ID, "idempotency_key": ID},
    "GetReservationRequest": {"reservation_id": ID},
    # promise.proto
    "GetDeliveryOptionsRequest": {
        "lines": Many(LINES),
        "channel": ID,
        "pickup_stores": Whole(0, MAX_PICKUP_STORES),
    },
    # rules.proto
    "RuleSet": {"toml": TOML, "name": ID, "version": ID, "revision": REVISION},
    "ValidateRulesRequest": {"toml": TOML},
    "PutRulesRequest": {"toml": TOML, "expected_revision": REVISION, "idempotency_key": ID},
    # orders.proto
    "CustomerRef": {"id": ID, "email": EMAIL, "name": TEXT, "language": ID},
    # customers.proto
    "CustomerAccount": {"id": ID, "email": EMAIL, "name": TEXT, "language": ID},
    "PriceTerms": {
        "payment_terms_days": Whole(0, MAX_PAYMENT_TERMS_DAYS),
        "discount_basis_points": Whole(0, MAX_BASIS_POINTS),
    },
    "DeliveryPreferences": {"pickup_store_id": ID},
    "GetCustomerRequest": {"id": ID, "email": EMAIL},
    "Address": {"name": TEXT, "street": TEXT, "postal_code": ID, "city": TEXT, "country": ID},
    "PricedLine": {"sku": ID, "quantity": QUANTITY, "unit_price": MONEY, "name": TEXT},
    "PlaceOrderRequest": {
        "channel": ID,
        "external_order_id": ID,
        "lines": Many(LINES),
        "currency": ID,
        "pickup_store_id": ID,
        "payment_method": ID,
    },
    "PaymentEvent": {"amount": MONEY, "reference": ID, "reason": TEXT},
    "Webhook": {"provider": ID, "payload": Blob(MAX_PAYLOAD_BYTES), "signature": TEXT},
    "RecordPaymentRequest": {"order_id": ID, "idempotency_key": ID},
    "CancelOrderRequest": {"order_id": ID, "idempotency_key": ID, "reason": TEXT},
    "RecordShipmentRequest": {
        "order_id": ID,
        "shipment_id": ID,
        "carrier": ID,
        "tracking_number": ID,
        "idempotency_key": ID,
        "lines": Many(LINES),
    },
    "RejectShipmentRequest": {
        "order_id": ID,
        "shipment_id": ID,
        "idempotency_key": ID,
        "note": TEXT,
    },
    "AcceptShipmentRequest": {"order_id": ID, "shipment_id": ID, "idempotency_key": ID},
    "RecordDeliveryRequest": {"order_id": ID, "shipment_id": ID, "idempotency_key": ID},
    "ReturnItem": {"sku": ID, "quantity": QUANTITY},
    "RequestReturnRequest": {
        "order_id": ID,
        "idempotency_key": ID,
        "items": Many(LINES),
        "reason": TEXT,
    },
    "ReceiveReturnRequest": {
        "order_id": ID,
        "return_id": ID,
        "node_id": ID,
        "items": Many(LINES),
        "idempotency_key": ID,
    },
    "Inspection": {"sku": ID, "restock": UNITS, "write_off": UNITS},
    "InspectReturnRequest": {
        "order_id": ID,
        "return_id": ID,
        "inspections": Many(LINES),
        "idempotency_key": ID,
    },
    "ResumeOrderRequest": {"order_id": ID, "idempotency_key": ID},
    "GetOrderRequest": {"order_id": ID},
    "ListOrdersRequest": {
        "customer_id": ID,
        "email": EMAIL,
        "page_size": Whole(0, MAX_PAGE_SIZE),
        "page_token": ID,
    },
}


def _order_total(message: Any, problems: list[FieldProblem]) -> None:
    """A PlaceOrder's total (sum of unit_price x quantity) is money too: at most MAX_MONEY."""
    total = sum(line.unit_price * line.quantity for line in message.lines)
    if total > MAX_MONEY:
        problems.append(
            FieldProblem("lines", total, f"the order's total must be at most {MAX_MONEY}")
        )


WHOLE: Mapping[str, Callable[[Any, list[FieldProblem]], None]] = {
    "PlaceOrderRequest": _order_total,
}
"""Checks over a whole message (after its fields passed), by message name."""


def bracket_depth(text: str) -> int:
    """How deep `[` and `{` nest in TOML text, outside strings and comments."""
    depth = deepest = 0
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in "]}":
            depth = max(0, depth - 1)
        elif c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif c in "\"'":
            quote = c * 3 if text.startswith(c * 3, i) else c
            j = i + len(quote)
            while j < n and not text.startswith(quote, j):
                j += 2 if c == '"' and text[j] == "\\" else 1
                if len(quote) == 1 and j < n and text[j] == "\n":
                    break
            i = j + len(quote) - 1
        i += 1
    return deepest


def data_depth(data: object) -> int:
    """How deep tables and arrays nest in parsed TOML (without recursion)."""
    deepest, stack = 0, [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        deepest = max(deepest, depth + 1)
        stack.extend((child, depth + 1) for child in children)
    return deepest


class _Checker:
    """The checks of one message type, compiled once from its descriptor and `FIELDS`."""

    def __init__(self) -> None:
        self.scalars: list[tuple[str, Bound]] = []
        self.enums: list[tuple[str, frozenset[int]]] = []
        self.lists: list[tuple[str, int | None, Bound | None]] = []
        self.messages: list[tuple[str, _Checker]] = []
        self.message_lists: list[tuple[str, int | None, _Checker]] = []
        self.whole: Callable[[Any, list[FieldProblem]], None] | None = None

    def build(self, descriptor: Descriptor, limits: Limits, table: _Table) -> None:
        ours = descriptor.file.package == PACKAGE
        specs = FIELDS.get(descriptor.name, {}) if ours else {}
        self.whole = WHOLE.get(descriptor.name) if ours else None
        for field in descriptor.fields:
            spec = specs.get(field.name)
            if field.is_repeated:
                most = spec.most(limits) if isinstance(spec, Many) else None
                each = spec.each if isinstance(spec, Many) else None
                if field.message_type is not None:
                    self.message_lists.append((field.name, most, table.of(field.message_type)))
                else:
                    self.lists.append((field.name, most, each))
            elif field.message_type is not None:
                self.messages.append((field.name, table.of(field.message_type)))
            elif field.enum_type is not None:
                self.enums.append((field.name, frozenset(v.number for v in field.enum_type.values)))
            elif spec is not None and not isinstance(spec, Many):
                self.scalars.append((field.name, spec))

    def ok(self, message: Any) -> bool:
        """Whether every field is within range (fast: plain loops, no names built)."""
        for name, bound in self.scalars:
            if not bound.admits(getattr(message, name)):
                return False
        for name, known in self.enums:
            if getattr(message, name) not in known:
                return False
        for name, most, each in self.lists:
            values = getattr(message, name)
            if most is not None and len(values) > most:
                return False
            if each is not None:
                for value in values:
                    if not each.admits(value):
                        return False
        for name, checker in self.messages:
            if message.HasField(name) and not checker.ok(getattr(message, name)):
                return False
        for name, most, checker in self.message_lists:
            items = getattr(message, name)
            if most is not None and len(items) > most:
                return False
            for item in items:
                if not checker.ok(item):
                    return False
        return self.whole is None or not _whole_problems(self.whole, message)

    def check(self, message: Any, path: str, problems: list[FieldProblem]) -> None:
        """Adds a problem for every field out of range, named `path` + the field; a repeated
        field with too many entries raises LimitExceeded at once."""
        for name, most, _ in self.lists:
            _count(path + name, len(getattr(message, name)), most)
        for name, most, _ in self.message_lists:
            _count(path + name, len(getattr(message, name)), most)
        for name, bound in self.scalars:
            value = getattr(message, name)
            if not bound.admits(value):
                problems.append(FieldProblem(path + name, value, bound.problem(value)))
        for name, known in self.enums:
            value = getattr(message, name)
            if value not in known:
                problems.append(FieldProblem(path + name, value, "is not a value of the enum"))
        for name, _, each in self.lists:
            if each is None:
                continue
            for i, value in enumerate(getattr(message, name)):
                if not each.admits(value):
                    problems.append(FieldProblem(f"{path}{name}[{i}]", value, each.problem(value)))
        for name, checker in self.messages:
            if message.HasField(name):
                checker.check(getattr(message, name), f"{path}{name}.", problems)
        for name, _, checker in self.message_lists:
            for i, item in enumerate(getattr(message, name)):
                if len(problems) >= MAX_PROBLEMS:
                    return
                if not checker.ok(item):
                    checker.check(item, f"{path}{name}[{i}].", problems)
        if self.whole is not None and not problems:
            problems.extend(
                FieldProblem(path + p.field, p.value, p.problem)
                for p in _whole_problems(self.whole, message)
            )


def _whole_problems(
    check: Callable[[Any, list[FieldProblem]], None], message: Any
) -> list[FieldProblem]:
    found: list[FieldProblem] = []
    check(message, found)
    return found


def _count(field: str, size: int, most: int | None) -> None:
    if most is not None and size > most:
        raise LimitExceeded(field, size, most)


class _Table:
    """Checkers by message type, built once per server (they depend on its `Limits`)."""

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._checkers: dict[str, _Checker] = {}

    def of(self, descriptor: Descriptor) -> _Checker:
        found = self._checkers.get(descriptor.full_name)
        if found is None:
            found = self._checkers[descriptor.full_name] = _Checker()  # first: types may recurse
            found.build(descriptor, self._limits, self)
        return found


class Bounds:
    """`check(message)`: InvalidInput naming every field of a request out of its range."""

    def __init__(self, limits: Limits | None = None) -> None:
        self._table = _Table(limits or Limits())

    def check(self, message: Message, path: str = "") -> None:
        checker = self._table.of(cast(Descriptor, message.DESCRIPTOR))
        if checker.ok(message):
            return
        problems: list[FieldProblem] = []
        checker.check(message, path, problems)
        if problems:
            raise InvalidInput(problems)


class BoundsInterceptor(grpc.ServerInterceptor):
    """Checks every allocation.v1 request (each message of a stream) with `Bounds` before the
    handler runs; registered inside `ErrorInterceptor`, which maps what it raises."""

    def __init__(self, limits: Limits | None = None) -> None:
        self._bounds = Bounds(limits)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None or not handler_call_details.method.startswith(f"/{PACKAGE}."):
            return handler
        bounds = self._bounds

        def wrap(behavior: Behavior, streamed_in: bool, streamed_out: bool) -> Behavior:
            def one(request: Any, context: grpc.ServicerContext) -> Any:
                bounds.check(request)
                return behavior(request, context)

            def each(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
                return behavior(_checked_stream(bounds, requests), context)

            return each if streamed_in else one

        return rewrapped(handler, wrap)


def _checked_stream(bounds: Bounds, requests: Iterator[Any]) -> Iterator[Any]:
    """The stream's messages, each checked as it arrives and named `chunks[i].`."""
    for i, request in enumerate(requests):
        bounds.check(request, f"chunks[{i}].")
        yield request
