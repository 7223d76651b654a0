"""OpenTelemetry tracing of one server: a tracer provider of its own, with the exporter picked
by name (`none`, `console`, `otlp` to an endpoint) or given (tests pass an InMemorySpanExporter).
The provider is not installed globally, so several servers in one process keep apart."""

from __future__ import annotations

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import Tracer

EXPORTERS = ("none", "console", "otlp")


def tracer_provider(
    exporter: str | SpanExporter = "none",
    endpoint: str | None = None,
    service_name: str = "allocation-engine",
) -> TracerProvider:
    """A provider exporting to `exporter`: a name of `EXPORTERS` or an exporter object (spans go
    through a simple, synchronous processor then, so a test reads them at once)."""
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if isinstance(exporter, SpanExporter):
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    elif exporter != "none":
        raise ValueError(f"trace exporter must be one of {list(EXPORTERS)}, not {exporter!r}")
    return provider


def tracer_of(provider: TracerProvider) -> Tracer:
    return provider.get_tracer("allocation_engine")
