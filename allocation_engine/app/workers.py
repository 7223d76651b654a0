"""`serve --workers N`: N server processes sharing one port, all on one Redis, under a supervisor.

The pattern of gRPC Python's multiprocessing example: each child binds the port itself with
`grpc.so_reuseport` (`ServeConfig.reuse_port=True`), and the children are started before this
process creates any gRPC object. They are started with `spawn` (a fresh interpreter each), so a
child started later, to replace one that died, is safe too even though the supervisor has
imported grpc by then. The kernel spreads incoming connections over the children.

- **One store.** Every child opens the same `redis_url`; N > 1 on the in-memory store is refused
  (each child would hold its own stock).
- **Seeding and rules once.** Child 0 starts first, alone: it publishes the rules file (if the
  store holds other text) and loads the demo network (if asked and the store is empty). The other
  children start after it serves, see the same rules text and a non-empty store, and write
  nothing; they are also started with `demo=False`, so only child 0 could ever seed.
- **Signals.** SIGTERM or SIGINT to the supervisor is forwarded as SIGTERM to every child, which
  stops gracefully (health NOT_SERVING, calls in flight get `grace` seconds); children ignore
  SIGINT themselves, so a Ctrl-C in a terminal (sent to the whole process group) stops them once,
  through the supervisor. A child still running `grace + 10` seconds later is killed.
- **A child that dies is replaced**, and said so on stderr (pid and exit code). Restarts are
  bounded: more than `max_restarts` within `restart_window` seconds means something is wrong
  with every child (Redis gone, a bad rules file), so the supervisor stops the others and
  `run_workers` returns 1 instead of restarting forever.
- **Metrics** are per process: child i serves them on `--metrics-port` + i.
- **Pids**: `Workers.pids` lists the children's current pids (for CPU accounting: a benchmark
  reads `/proc/<pid>/stat` of each).
"""

from __future__ import annotations

import collections
import contextlib
import multiprocessing
import multiprocessing.connection
import multiprocessing.process
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from types import FrameType
from typing import Any

from allocation_engine.app.serve import ServeConfig
from allocation_engine.errors import InvalidInput

PORT_IN_USE = 3
"""Exit code when the port is held by a process not started with reuse_port (as `serve`)."""
TOO_MANY_RESTARTS = 1
START_TIMEOUT = 120.0


class WorkerFailed(RuntimeError):
    """A child could not start (its port taken, Redis unreachable, a bad rules file)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _child(config: ServeConfig, index: int, ready: Any, grace: float) -> None:
    """One server process: `app.serve.start(config)` until SIGTERM, then a graceful stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor forwards Ctrl-C as SIGTERM
    from allocation_engine.api.server import PortInUse
    from allocation_engine.app import serve

    try:
        running = serve.start(config)
    except PortInUse as taken:
        ready.put((index, os.getpid(), "port-in-use", str(taken)))
        sys.exit(PORT_IN_USE)
    except Exception as error:  # reported to the supervisor, which decides
        ready.put((index, os.getpid(), "failed", f"{type(error).__name__}: {error}"))
        raise
    signal.signal(signal.SIGTERM, lambda signum, frame: running.stop_soon(grace))
    ready.put((index, os.getpid(), "serving", running.address))
    running.wait()


class Workers:
    """N children serving `config` on one port; see the module's docstring."""

    def __init__(
        self,
        config: ServeConfig,
        n: int,
        *,
        grace: float = 10.0,
        max_restarts: int = 5,
        restart_window: float = 60.0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        if n < 1:
            raise InvalidInput.one("--workers", n, "must be at least 1")
        if n > 1 and not config.redis_url:
            raise InvalidInput.one(
                "--workers",
                n,
                "more than one process needs --redis-url: each process would keep its own "
                "in-memory stock",
            )
        self.config = replace(config, reuse_port=True)
        self.n = n
        self.grace = grace
        self.max_restarts = max_restarts
        self.restart_window = restart_window
        self.restarts: list[tuple[int, int, int | None]] = []  # (index, old pid, exit code)
        self._log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self._context = multiprocessing.get_context("spawn")
        self._ready: Any = self._context.Queue()
        self._children: list[multiprocessing.process.BaseProcess | None] = [None] * n
        self._recent: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()
        self.address = f"{config.host}:{config.port}"

    @property
    def pids(self) -> list[int]:
        """The children's current pids, child 0 first."""
        with self._lock:
            return [c.pid for c in self._children if c is not None and c.pid is not None]

    def _config_of(self, index: int) -> ServeConfig:
        """Child `index`'s config: only child 0 seeds and polls the channels' importers (one
        poller per platform is enough; the others would only read the same pages again); each
        serves metrics on its own port (the given one plus its index), since Prometheus
        scrapes each process."""
        telemetry = self.config.telemetry
        if telemetry.metrics_port:
            telemetry = replace(telemetry, metrics_port=telemetry.metrics_port + index)
        config = replace(self.config, telemetry=telemetry)
        return config if index == 0 else replace(config, demo=False, poll=False)

    def _spawn(self, index: int) -> None:
        process = self._context.Process(
            target=_child,
            args=(self._config_of(index), index, self._ready, self.grace),
            name=f"allocation-engine-worker-{index}",
        )
        process.start()
        with self._lock:
            self._children[index] = process
        self._await_ready(index, process)

    def _await_ready(self, index: int, process: multiprocessing.process.BaseProcess) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                got, pid, state, detail = self._ready.get(timeout=0.2)
            except queue.Empty:
                if not process.is_alive():
                    raise WorkerFailed(
                        f"worker {index} exited with {process.exitcode} while starting"
                    ) from None
                if time.monotonic() > deadline:
                    raise WorkerFailed(
                        f"worker {index} did not start within {START_TIMEOUT} s"
                    ) from None
                continue
            if got != index or pid != process.pid:
                continue  # a late word from a child replaced meanwhile
            if state == "serving":
                self.address = detail
                return
            process.join(timeout=10)
            code = PORT_IN_USE if state == "port-in-use" else 1
            raise WorkerFailed(f"worker {index}: {detail}", code)

    def start(self) -> Workers:
        """Starts child 0, waits until it serves (it seeds and publishes), then the others."""
        try:
            for index in range(self.n):
                self._spawn(index)
        except BaseException:
            self.stop()
            raise
        return self

    def check(self) -> bool:
        """Replaces every child that died; False once restarts exceed the bound."""
        for index in range(self.n):
            with self._lock:
                process = self._children[index]
            if process is None or process.is_alive():
                continue
            now = time.monotonic()
            while self._recent and now - self._recent[0] > self.restart_window:
                self._recent.popleft()
            if len(self._recent) >= self.max_restarts:
                self._log(
                    f"allocation-engine: worker {index} (pid {process.pid}) exited with "
                    f"{process.exitcode}; {len(self._recent)} restarts within "
                    f"{self.restart_window:g} s already, giving up"
                )
                return False
            self._recent.append(now)
            self.restarts.append((index, process.pid or 0, process.exitcode))
            self._log(
                f"allocation-engine: worker {index} (pid {process.pid}) exited with "
                f"{process.exitcode}; starting another"
            )
            try:
                self._spawn(index)
            except WorkerFailed as failed:
                self._log(f"allocation-engine: {failed}")
            else:
                self._log(f"allocation-engine: worker {index} is pid {self.pids[index]}")
        return True

    def supervise(self, stopping: threading.Event, interval: float = 0.5) -> bool:
        """Watches the children until `stopping` is set (True) or restarts run out (False)."""
        while not stopping.is_set():
            with self._lock:
                sentinels = [c.sentinel for c in self._children if c is not None]
            multiprocessing.connection.wait(sentinels, timeout=interval)
            if stopping.is_set():
                break
            if not self.check():
                return False
        return True

    def stop(self) -> None:
        """SIGTERM to every child; each finishes its calls in flight; stragglers are killed."""
        with self._lock:
            children = [c for c in self._children if c is not None]
        for process in children:
            if process.is_alive() and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace + 10
        for process in children:
            process.join(timeout=max(0.1, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()

    def __enter__(self) -> Workers:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_workers(
    config: ServeConfig,
    n: int,
    grace: float = 10.0,
    out: Callable[[str], None] | None = None,
) -> int:
    """Runs `n` server processes on `config`'s port until SIGTERM or Ctrl-C; the exit code.

    0 after a graceful stop, 3 when the port is held by a process without reuse_port, 1 when a
    child could not start or children kept dying (more than 5 restarts within 60 s)."""
    say = out or (lambda line: print(line, flush=True))
    workers = Workers(config, n, grace=grace)
    stopping = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            workers.start()
        except WorkerFailed as failed:
            print(f"allocation-engine serve: {failed}", file=sys.stderr, flush=True)
            return failed.exit_code
        pids = ", ".join(str(pid) for pid in workers.pids)
        say(f"allocation-engine: {n} worker processes on {workers.address} (pids {pids}).")
        healthy = workers.supervise(stopping)
        workers.stop()
        return 0 if healthy else TOO_MANY_RESTARTS
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
