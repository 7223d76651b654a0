"""Where traces go: nowhere, the console, or an OTLP collector (Jaeger, Tempo, ...).

OpenTelemetry keeps one tracer provider per process, so this sets it once; code everywhere else
asks `opentelemetry.trace.get_tracer(...)` and gets a no-op tracer until a provider is set.
Tests set their own provider with the SDK's in-memory exporter.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from allocation_engine.errors import InvalidInput

EXPORTERS = ("none", "console", "otlp")


def exporter_for(kind: str, endpoint: str | None = None) -> SpanExporter | None:
    """The span exporter `kind` names (None for `none`); `endpoint` is the OTLP collector's
    host:port (default: the OTEL_EXPORTER_OTLP_ENDPOINT variable, else localhost:4317)."""
    if kind == "none":
        return None
    if kind == "console":
        return ConsoleSpanExporter()
    if kind == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=endpoint) if endpoint else OTLPSpanExporter()
    raise InvalidInput.one("trace_exporter", kind, f"must be one of {', '.join(EXPORTERS)}")


def configure_tracing(kind: str, endpoint: str | None = None) -> TracerProvider | None:
    """Sets the process's tracer provider to export to `kind` (batched, off the call path);
    None, and nothing set, for `none`."""
    exporter = exporter_for(kind, endpoint)
    if exporter is None:
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": "allocation-engine"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider
