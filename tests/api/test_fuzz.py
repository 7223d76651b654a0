"""A bounded, seeded fuzz pass over the whole gRPC surface: for every method of every service,
requests built from the descriptors (a valid request with fields mutated to random and edge
values, and wholly random messages) and raw bytes (random, or a valid request with bytes
flipped or cut) sent through a raw `channel.unary_unary`/`stream_unary`. The contract says a
request never answers INTERNAL (or UNKNOWN) and every status is bounded; any call that breaks
it is a finding, listed with its method, status and message.

It runs against a server with a real reservation and a placed order, so the order and
reservation calls reach past NOT_FOUND, once on memory (`PER_METHOD` messages and `RAW` byte
strings per method) and once on Redis (a quarter of that). Fixed seeds, well under a minute.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from allocation_engine.api.errors import MAX_MESSAGE_CHARS
from allocation_engine.engine.rules import default_rules_text
from allocation_engine.proto.allocation.v1 import allocation_pb2 as apb
from allocation_engine.proto.allocation.v1 import orders_pb2 as opb
from tests.api.surface import BASE, METHODS, Answer, Surface, put, scalar_paths, surface

SEED = 20240611
PER_METHOD = 300
RAW = 60
BAD = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)

INTS = [0, 1, -1, 2, 7, 2**31 - 1, -(2**31), 2**53 + 1, 2**63 - 1, -(2**63), 10**9, 10**9 + 1]
FLOATS = [0.0, -0.0, 1.0, -1.0, math.nan, math.inf, -math.inf, 1e308, 5e-324, 90.0, 180.5, 1e6]
WORDS = ["", "A", "B", "WH-FRA", "WH-BER", "ST-MUC", "DE", "EUR", "en", "web", "card", "x" * 129]
TOML = [
    default_rules_text(),
    "",
    "= = =",
    "name = 1",
    "x = " + "[" * 200 + "]" * 200,
    "[" + ".".join(["a"] * 400) + "]",
    default_rules_text().replace("=", "= -", 3),
]
INT_TYPES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
}


def _text(rng: random.Random) -> str:
    pick = rng.random()
    if pick < 0.35:
        return rng.choice(WORDS)
    if pick < 0.6:
        alphabet = "abcXYZ019-_./:@ \t\n\x00\x1f\u00e9\u4e2d\U0001f600[]{}=\"'#\\"
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
    if pick < 0.8:
        return "".join(
            chr(rng.choice([rng.randint(32, 0xD7FF), rng.randint(0xE000, 0x10FFFF)]))
            for _ in range(rng.randint(0, 20))
        )
    return rng.choice(["s", "\u00e9", "9"]) * rng.choice([128, 129, 1_000, 70_000])


def value_for(rng: random.Random, f: FieldDescriptor) -> Any:
    """A random or edge value the field's type holds."""
    if f.type in INT_TYPES:
        lo, hi = INT_TYPES[f.type]
        value = rng.choice(INTS) if rng.random() < 0.7 else rng.randint(lo, hi)
        return max(lo, min(hi, value))
    if f.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return rng.choice(FLOATS) if rng.random() < 0.7 else rng.uniform(-1e9, 1e9)
    if f.type == FieldDescriptor.TYPE_BOOL:
        return rng.random() < 0.5
    if f.type == FieldDescriptor.TYPE_ENUM:
        known = [v.number for v in f.enum_type.values]
        return rng.choice([*known, *known, -1, 99, 2**31 - 1])
    if f.type == FieldDescriptor.TYPE_BYTES:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300)))
    if f.name == "toml":
        return rng.choice(TOML)
    return _text(rng)


def random_message(rng: random.Random, descriptor: Descriptor, depth: int = 0) -> Message:
    """A message of `descriptor` with random fields set (nested to depth 3)."""
    message: Any = descriptor._concrete_class()
    for f in descriptor.fields:
        if rng.random() < 0.4:
            continue
        if f.message_type is not None:
            if depth >= 3 or f.message_type.file.package != "allocation.v1":
                continue
            if f.is_repeated:
                count = rng.choice([0, 1, 2, 3, 201]) if depth == 0 else rng.randint(0, 2)
                for _ in range(count):
                    getattr(message, f.name).add().CopyFrom(
                        random_message(rng, f.message_type, depth + 1)
                    )
            else:
                getattr(message, f.name).CopyFrom(random_message(rng, f.message_type, depth + 1))
        elif f.is_repeated:
            getattr(message, f.name).extend(value_for(rng, f) for _ in range(rng.randint(0, 3)))
        else:
            setattr(message, f.name, value_for(rng, f))
    return message  # type: ignore[no-any-return]


def mutated(rng: random.Random, base: Message) -> Message:
    """`base` with one to four fields set to random or edge values."""
    message = type(base)()
    message.CopyFrom(base)
    paths = list(scalar_paths(base.DESCRIPTOR))
    for steps in rng.sample(paths, min(len(paths), rng.randint(1, 4))):
        target: Any = message
        for step in steps[:-1]:
            target = target.DESCRIPTOR.fields_by_name[step.name].message_type._concrete_class()
        f = target.DESCRIPTOR.fields_by_name[steps[-1].name]
        put(message, steps, value_for(rng, f))
    fresh: Any = message
    for name in ("idempotency_key", "external_order_id"):  # a new key reaches past the replay
        if name in fresh.DESCRIPTOR.fields_by_name and rng.random() < 0.6:
            setattr(fresh, name, f"fz-{rng.getrandbits(40):x}")
    return message


def raw_bytes(rng: random.Random, base: Message) -> bytes:
    """Random bytes, or `base` serialized with bytes flipped, cut or grown."""
    data = bytearray(base.SerializeToString())
    pick = rng.random()
    if pick < 0.3 or not data:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 200)))
    if pick < 0.6:
        for _ in range(rng.randint(1, 5)):
            data[rng.randrange(len(data))] = rng.getrandbits(8)
        return bytes(data)
    if pick < 0.8:
        return bytes(data[: rng.randrange(len(data))]) + bytes([rng.getrandbits(8)])
    return bytes(data) + bytes([rng.choice([0x0A, 0x12, 0xFF, 0x80]), 0xFF, 0xFF, 0xFF, 0x7F])


COUNTS = {"memory": (PER_METHOD, RAW), "redis": (PER_METHOD // 4, RAW // 4)}


@pytest.fixture(scope="module", params=list(COUNTS))
def world(request: pytest.FixtureRequest) -> Iterator[Surface]:
    """The surface on memory (the full count), then on Redis (a quarter of it)."""
    redis_url = request.getfixturevalue("redis_server") if request.param == "redis" else None
    for running in surface(request.param, redis_url):
        running.kind = request.param  # type: ignore[attr-defined]
        yield running


def _with_live_ids(world: Surface) -> dict[str, Message]:
    """The base requests, pointed at a real reservation and a real placed order."""
    by_name = {m.name: m for m in METHODS}
    stub = world.channel.unary_unary(
        "/allocation.v1.AllocationService/Reserve",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=apb.ReserveResponse.FromString,
    )
    reserve: Any = BASE["Reserve"]()
    reserve.ClearField("plan")
    reservation = stub(reserve, timeout=20).reservation.id
    place = world.channel.unary_unary(
        "/allocation.v1.OrderService/PlaceOrder",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=opb.PlaceOrderResponse.FromString,
    )
    order_id = place(BASE["PlaceOrder"](), timeout=20).order.id
    bases: dict[str, Message] = {}
    for name in by_name:
        request: Any = BASE[name]()
        for field, value in (("reservation_id", reservation), ("order_id", order_id)):
            if field in request.DESCRIPTOR.fields_by_name:
                setattr(request, field, value)
        bases[name] = request
    return bases


def _finding(name: str, request: Message | bytes, answer: Answer) -> str | None:
    if answer.code in BAD:
        shown = request[:60] if isinstance(request, bytes) else str(request)[:300]
        return f"{name}: {answer.code.name} {answer.message!r} for {shown!r}"
    if len(answer.message) > MAX_MESSAGE_CHARS or answer.trailer_bytes >= 8192:
        return f"{name}: unbounded status ({len(answer.message)} chars) {answer.code.name}"
    return None


@pytest.mark.parametrize("method", METHODS, ids=[m.name for m in METHODS])
def test_no_request_answers_internal(world: Surface, method: Any) -> None:
    """Given the server with a live reservation and order, when `PER_METHOD` random and mutated
    messages and `RAW` raw byte strings reach the method, then none is answered INTERNAL or
    UNKNOWN, and every status fits in the trailers."""
    rng = random.Random(f"{SEED}:{method.full_name}")
    bases = getattr(world, "_fuzz_bases", None)
    if bases is None:
        bases = _with_live_ids(world)
        world._fuzz_bases = bases  # type: ignore[attr-defined]
    base = bases[method.name]
    messages, raws = COUNTS[world.kind]  # type: ignore[attr-defined]
    findings = []
    for i in range(messages):
        request = mutated(rng, base) if i % 3 else random_message(rng, method.input_type)
        found = _finding(method.name, request, world.call(method, request))
        if found:
            findings.append(found)
    for _ in range(raws):
        payload = raw_bytes(rng, base)
        found = _finding(method.name, payload, world.call(method, payload))
        if found:
            findings.append(found)
    assert not findings, "\n".join(findings[:10])
