"""Prometheus metrics of one server, on a registry of its own (not the process-global default),
so tests and several servers in one process never collide; `start_metrics_http` serves it."""

from __future__ import annotations

from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STORE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)


@dataclass(frozen=True)
class Metrics:
    """Every series the service exports; names are what the Grafana dashboard reads."""

    registry: CollectorRegistry
    rpc_latency: Histogram
    solver_status: Counter
    optimality_gap: Histogram
    candidates: Histogram
    stock_outs: Counter
    reroutes: Counter
    store_latency: Histogram
    store_errors: Counter
    reservations: Gauge
    holds_expired: Counter
    outbox_backlog: Gauge
    outbox_failures: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> Metrics:
        r = registry if registry is not None else CollectorRegistry()
        return cls(
            registry=r,
            rpc_latency=Histogram(
                "allocation_rpc_duration_seconds",
                "Server-side latency of each RPC by method and status code",
                ["method", "code"],
                buckets=LATENCY_BUCKETS,
                registry=r,
            ),
            solver_status=Counter(
                "allocation_plans",
                "Plans answered, by plan status (OPTIMAL, FEASIBLE, INFEASIBLE)",
                ["status"],
                registry=r,
            ),
            optimality_gap=Histogram(
                "allocation_optimality_gap_ratio",
                "Relative optimality gap of the plans answered (0 = proven optimal)",
                buckets=(0.0, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
                registry=r,
            ),
            candidates=Histogram(
                "allocation_candidates",
                "Candidate nodes per plan, before (fenced) and after (solver) reduction",
                ["stage"],
                buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000),
                registry=r,
            ),
            stock_outs=Counter(
                "allocation_stock_outs",
                "InsufficientStock answers and INFEASIBLE plans, by method",
                ["method"],
                registry=r,
            ),
            reroutes=Counter(
                "allocation_reroutes",
                "Re-plans after a node refused a hold (the stock moved after the read)",
                registry=r,
            ),
            store_latency=Histogram(
                "allocation_store_duration_seconds",
                "Round trip of each store (Redis) operation",
                ["operation"],
                buckets=STORE_BUCKETS,
                registry=r,
            ),
            store_errors=Counter(
                "allocation_store_errors",
                "Store operations that raised, by operation and error type",
                ["operation", "error"],
                registry=r,
            ),
            reservations=Gauge(
                "allocation_reservations",
                "Reservations by state (set by whoever observes the store: sweeper or scrape)",
                ["state"],
                registry=r,
            ),
            holds_expired=Counter(
                "allocation_holds_expired",
                "Reservations expired by the sweeper or a planning read",
                registry=r,
            ),
            outbox_backlog=Gauge(
                "allocation_outbox_backlog",
                "Outbox messages not yet delivered",
                registry=r,
            ),
            outbox_failures=Counter(
                "allocation_outbox_delivery_failures",
                "Outbox deliveries that failed (retried later)",
                registry=r,
            ),
        )


def start_metrics_http(registry: CollectorRegistry, host: str = "127.0.0.1", port: int = 0) -> int:
    """Serves `registry` at http://host:port/metrics in a daemon thread; the bound port (so
    port 0 picks a free one)."""
    server, _thread = start_http_server(port, addr=host, registry=registry)
    assert isinstance(server, WSGIServer)
    return int(server.server_port)
