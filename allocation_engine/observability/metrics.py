"""The server's Prometheus metrics, in a registry of its own (not the process-global default),
so several servers in one process (the tests) never share or clash over a series.

Names follow Prometheus conventions (`_seconds`, `_total`, base units); the Grafana dashboard in
`deploy/grafana/` reads exactly these. What each one is for:

* `allocation_rpc_duration_seconds{method,code}`: latency per RPC and status code.
* `allocation_plans_total{method,status}`: plans answered by status (OPTIMAL, FEASIBLE,
  INFEASIBLE); `allocation_plan_gap` the optimality gap of FEASIBLE ones.
* `allocation_plan_candidates{stage}`: nodes past the fences (`fenced`) and of those the ones the
  solver saw (`reduced`).
* `allocation_reservation_attempts_total`, `allocation_reroutes_total`: plans a Reserve tried,
  and re-plans because stock moved under the first one (a hold refused).
* `allocation_stockouts_total{method}`: orders answered short of stock.
* `allocation_store_duration_seconds{operation,outcome}`: each store call (a Redis round trip or
  a few), `allocation_store_errors_total{operation}` those that failed.
* `allocation_reservations_total{state}`: reservations entering HELD, COMMITTED, RELEASED and
  EXPIRED (the sweeper's expiries are the holds that lapsed); their rates are the flow of stock
  through holds.
* `process_cpu_seconds_total` and the other process series: each server process's own CPU.
"""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    start_http_server,
)

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
STORE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1)
CANDIDATE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
GAP_BUCKETS = (0.0001, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1)


class Metrics:
    """Every series the server exports, on `registry`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)  # process_cpu_seconds_total, memory: per-process CPU
        self.rpc_duration = Histogram(
            "allocation_rpc_duration_seconds",
            "RPC latency by method and status code",
            ["method", "code"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.http_duration = Histogram(
            "allocation_http_duration_seconds",
            "HTTP edge latency by route template, method and status",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.channel_orders = Counter(
            "allocation_channel_orders",
            "Orders a sales channel brought in, by how (webhook, poll) and outcome "
            "(placed, duplicate, refused)",
            ["channel", "via", "outcome"],
            registry=r,
        )
        self.plans = Counter(
            "allocation_plans", "Plans answered by status", ["method", "status"], registry=r
        )
        self.gap = Histogram(
            "allocation_plan_gap",
            "Optimality gap of plans the time limit cut short",
            buckets=GAP_BUCKETS,
            registry=r,
        )
        self.candidates = Histogram(
            "allocation_plan_candidates",
            "Candidate nodes past the fences and after reduction",
            ["stage"],
            buckets=CANDIDATE_BUCKETS,
            registry=r,
        )
        self.attempts = Counter(
            "allocation_reservation_attempts", "Plans tried by Reserve calls", registry=r
        )
        self.reroutes = Counter(
            "allocation_reroutes", "Re-plans because a hold was refused", registry=r
        )
        self.stockouts = Counter(
            "allocation_stockouts", "Orders answered short of stock", ["method"], registry=r
        )
        self.store_duration = Histogram(
            "allocation_store_duration_seconds",
            "Store calls (Redis round trips) by operation",
            ["operation", "outcome"],
            buckets=STORE_BUCKETS,
            registry=r,
        )
        self.store_errors = Counter(
            "allocation_store_errors", "Store calls that failed", ["operation"], registry=r
        )
        self.reservations = Counter(
            "allocation_reservations",
            "Reservations entering a state (HELD, COMMITTED, RELEASED, EXPIRED)",
            ["state"],
            registry=r,
        )

        for rpc in ("Allocate", "Reserve"):  # exported at 0 before the first one
            self.stockouts.labels(rpc)

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> tuple[WSGIServer, int]:
        """Serves `/metrics` on `host:port` (0: a free port) in a daemon thread; the server and
        the port it bound."""
        server, thread = start_http_server(port, addr=host, registry=self.registry)
        assert isinstance(thread, threading.Thread)
        return server, int(server.server_port)
