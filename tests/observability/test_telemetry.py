"""What an operator sees of a running server: metrics scraped over HTTP, a trace with the named
spans, and JSON log lines with the call's ids and no traceback for an expected error."""

from __future__ import annotations

import io
import json
import logging
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from allocation_engine.api.server import PortInUse
from allocation_engine.app import serve
from allocation_engine.app.orders import OrderConfig
from allocation_engine.observability.logs import configure_logging
from allocation_engine.proto.allocation.v1 import allocation_pb2 as apb
from allocation_engine.proto.allocation.v1 import allocation_pb2_grpc as apb_grpc
from tests.support.grpc_inventory import order as grpc_order

SPANS = InMemorySpanExporter()
DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "allocation-engine.json"


@pytest.fixture(scope="module", autouse=True)
def tracer_provider() -> None:
    """The process's one tracer provider, exporting to memory (OpenTelemetry allows one)."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(SPANS))
    trace.set_tracer_provider(provider)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[serve.Running]:
    """The demo server in memory (with its HTTP edge and demo shop) with metrics on a free
    port."""
    config = serve.ServeConfig(
        port=0,
        http_port=0,
        demo=True,
        orders=OrderConfig(demo=True, mail_dir=str(tmp_path / "mail"), wms_dir=str(tmp_path)),
        telemetry=serve.TelemetryConfig(metrics_port=0),
    )
    started = serve.start(config)
    SPANS.clear()
    yield started
    started.stop(grace=0)


def order(order_id: str, quantity: int = 1) -> apb.ReserveRequest:
    """A Reserve of `quantity` of a demo sku, shipping to Cologne."""
    lines = {"SKU-0001": quantity}
    return apb.ReserveRequest(
        idempotency_key=f"key-{order_id}", order=grpc_order(order_id, **lines)
    )


def scrape(running: serve.Running) -> str:
    url = f"http://127.0.0.1:{running.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as answer:
        return str(answer.read().decode())


def value(text: str, series: str) -> float:
    """The sample of `series` (name with labels, exactly as exposed) in a scrape."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{series} not in the scrape")


def test_metrics_after_a_few_calls(running: serve.Running) -> None:
    """Given two Allocates, a Reserve, a Release and a refused Reserve, the scrape counts each
    by method and code, the plans by status, the reservations by state and the store calls."""
    with grpc.insecure_channel(running.address) as channel:
        stub = apb_grpc.AllocationServiceStub(channel)
        stub.Allocate(apb.AllocateRequest(order=order("o-1").order))
        stub.Allocate(apb.AllocateRequest(order=order("o-2").order))
        held = stub.Reserve(order("o-3")).reservation
        stub.ReleaseReservation(
            apb.ReleaseReservationRequest(reservation_id=held.id, idempotency_key="rel-1")
        )
        with pytest.raises(grpc.RpcError):
            stub.Reserve(apb.ReserveRequest(idempotency_key="", order=order("o-4").order))
    text = scrape(running)
    allocate = "/allocation.v1.AllocationService/Allocate"
    reserve = "/allocation.v1.AllocationService/Reserve"
    assert (
        value(text, f'allocation_rpc_duration_seconds_count{{code="OK",method="{allocate}"}}') == 2
    )
    assert (
        value(text, f'allocation_rpc_duration_seconds_count{{code="OK",method="{reserve}"}}') == 1
    )
    refused = f'allocation_rpc_duration_seconds_count{{code="INVALID_ARGUMENT",method="{reserve}"}}'
    assert value(text, refused) == 1
    assert value(text, 'allocation_plans_total{method="Allocate",status="OPTIMAL"}') == 2
    assert value(text, 'allocation_reservations_total{state="HELD"}') == 1
    assert value(text, 'allocation_reservations_total{state="RELEASED"}') == 1
    assert value(text, 'allocation_plan_candidates_count{stage="fenced"}') == 3
    assert value(text, "allocation_reservation_attempts_total") == 1
    assert (
        value(text, 'allocation_store_duration_seconds_count{operation="stock",outcome="ok"}') >= 3
    )


def test_a_reserve_is_one_trace_with_the_named_spans(running: serve.Running) -> None:
    """The RPC span is the root; the planning read, the engine's reduction and every store call
    are inside it, and the ids of the answer are on it."""
    with grpc.insecure_channel(running.address) as channel:
        held = apb_grpc.AllocationServiceStub(channel).Reserve(order("o-trace")).reservation
    spans = SPANS.get_finished_spans()
    root = next(s for s in spans if s.name == "/allocation.v1.AllocationService/Reserve")
    assert root.attributes is not None
    assert root.attributes["reservation.id"] == held.id
    assert root.attributes["order.id"] == "o-trace"
    assert root.attributes["rpc.grpc.status_code"] == "OK"
    inside = [s for s in spans if s.context.trace_id == root.context.trace_id and s is not root]
    names = {s.name for s in inside}
    assert {"planning read", "allocate", "store.stock", "store.hold"} <= names
    assert {"reduction", "search"} & names or "solve" in names
    by_id = {s.context.span_id: s for s in spans}
    read = next(s for s in inside if s.name == "planning read")
    assert read.parent is not None and read.parent.span_id == root.context.span_id
    stock = next(s for s in inside if s.name == "store.stock")
    assert stock.parent is not None and by_id[stock.parent.span_id].name == "planning read"


def test_log_lines_are_json_with_the_ids_and_no_traceback(running: serve.Running) -> None:
    """An order short of stock is an answer, not a fault: one JSON line with the method and
    code, and no traceback."""
    sink = io.StringIO()
    configure_logging("json")
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(sink)
    try:
        with grpc.insecure_channel(running.address) as channel, pytest.raises(grpc.RpcError):
            apb_grpc.AllocationServiceStub(channel).Reserve(order("o-short", quantity=10**6))
    finally:
        logging.getLogger().handlers.clear()
    lines = [json.loads(line) for line in sink.getvalue().splitlines() if line.strip()]
    rpc = [line for line in lines if line.get("event") == "rpc"]
    assert rpc, sink.getvalue()
    assert rpc[0]["method"] == "/allocation.v1.AllocationService/Reserve"
    assert rpc[0]["code"] == "FAILED_PRECONDITION"
    assert rpc[0]["level"] == "info" and "timestamp" in rpc[0]
    assert all("exception" not in line and "Traceback" not in json.dumps(line) for line in lines)


def test_the_dashboard_reads_only_series_the_server_exports(running: serve.Running) -> None:
    """Every metric the Grafana dashboard queries is in a scrape (a renamed series fails)."""
    dashboard = json.loads(DASHBOARD.read_text())
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b(allocation_\w+|process_\w+)\{", target["expr"])
    }
    with grpc.insecure_channel(running.address) as channel:
        stub = apb_grpc.AllocationServiceStub(channel)
        stub.Allocate(apb.AllocateRequest(order=order("o-dash").order))
    assert running.http is not None
    refused = httpx.post(f"{running.http.url}/webhooks/shopify-demo", content=b"{}")
    assert refused.status_code == 401  # unsigned: counted as a refused channel delivery
    exported = {line.split("{")[0].split(" ")[0] for line in scrape(running).splitlines()}
    assert len(queried) >= 8
    assert queried <= exported, queried - exported


def test_a_metrics_port_in_use_stops_the_start_before_anything_serves(
    running: serve.Running,
) -> None:
    """Given a metrics port another server holds, a second start is PortInUse naming it, and
    nothing of the second server is left serving."""
    taken = running.metrics_port
    config = serve.ServeConfig(port=0, telemetry=serve.TelemetryConfig(metrics_port=taken))
    with pytest.raises(PortInUse, match=f"127.0.0.1:{taken}"):
        serve.start(config)
    assert scrape(running).startswith("#")
