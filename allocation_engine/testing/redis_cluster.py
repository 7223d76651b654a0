"""A throwaway Redis Cluster of real redis-server processes, for tests and failover measurements.

`throwaway_cluster(masters=3, replicas=1)` starts `masters * (1 + replicas)` redis-servers with
`cluster-enabled yes` on free loopback ports in a temp folder, forms the cluster with
`redis-cli --cluster create`, waits until every node says `cluster_state:ok` with all 16,384
slots assigned, and yields a `ThrowawayCluster`: its `url` (`redis+cluster://...`, what
`connection.open_client` understands) and `kill_master`, which SIGKILLs a primary and waits until
one of its replicas took over (the failover test). It never touches a Redis it did not start
(never port 6379) and stops every process and removes the folder when the block ends.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from allocation_engine.testing.redis_process import RedisNotAvailable, free_port, redis_binary

NODE_TIMEOUT_MS = 1000  # how long a silent primary takes to be declared failed (fast failover)
SLOTS = 16384


def _ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        # The cluster bus listens on port + 10000; both must be free and never the default.
        if port not in ports and port != 6379 and port + 10000 < 65536:
            ports.append(port)
    return ports


def _client(port: int) -> redis.Redis:
    return redis.Redis(port=port, host="127.0.0.1", decode_responses=True, socket_timeout=2.0)


def _nodes(port: int) -> dict[str, dict[str, Any]]:
    """CLUSTER NODES as node `host:port` -> its fields (redis-py parses the reply so)."""
    with _client(port) as client:
        return dict(client.execute_command("CLUSTER NODES"))


def _wait(what: str, check: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if callable(check) and check():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise RedisNotAvailable(f"redis cluster: {what} not within {timeout} s")
        time.sleep(0.05)


@dataclass
class ThrowawayCluster:
    """The running cluster: its URL, its processes by port, and failover on demand."""

    url: str
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def alive(self) -> list[int]:
        return [port for port, p in self.processes.items() if p.poll() is None]

    def masters(self) -> list[int]:
        """Ports of the live primaries that serve slots."""
        return [port for port in self.alive() if self._serves_slots(port)]

    def _serves_slots(self, port: int) -> bool:
        try:
            me = _nodes(port).get(f"127.0.0.1:{port}", {})
        except redis.RedisError:
            return False
        return "master" in str(me.get("flags", "")) and bool(me.get("slots"))

    def flush(self) -> None:
        """Empties every live primary (replicas follow)."""
        for port in self.masters():
            with _client(port) as client:
                client.flushall()

    def kill_master(self, port: int | None = None, timeout: float = 15.0) -> int:
        """SIGKILLs primary `port` (default: the first) and waits until a replica took its
        slots and the cluster is whole again; returns the killed port."""
        victim = port if port is not None else self.masters()[0]
        with _client(victim) as client:
            node_id = str(client.execute_command("CLUSTER MYID"))
        self.processes[victim].send_signal(signal.SIGKILL)
        self.processes[victim].wait()
        survivors = self.alive()

        def promoted() -> bool:
            for port in survivors:
                with _client(port) as client:
                    if client.cluster("INFO")["cluster_state"] != "ok":
                        return False
                for node in _nodes(port).values():
                    if node["node_id"] == node_id and "fail" not in str(node["flags"]):
                        return False
                    if node["node_id"] == node_id and node.get("slots"):
                        return False  # the dead node still owns slots
            return True

        _wait("a replica's promotion", promoted, timeout)
        return victim


@contextmanager
def throwaway_cluster(
    masters: int = 3, replicas: int = 1, extra_args: Sequence[str] = ()
) -> Iterator[ThrowawayCluster]:
    """Starts and forms a cluster of `masters` primaries with `replicas` replicas each; yields
    it; stops it afterwards. `extra_args` go to every redis-server (e.g. appendonly settings)."""
    binary = redis_binary()
    cli = shutil.which("redis-cli") or str(Path(binary).with_name("redis-cli"))
    if not Path(cli).exists():
        raise RedisNotAvailable("redis-cli (needed to form the cluster) is not installed")
    workdir = Path(tempfile.mkdtemp(prefix="ae-cluster-"))
    ports = _ports(masters * (1 + replicas))
    cluster = ThrowawayCluster(
        "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in ports[:masters])
    )
    try:
        for port in ports:
            folder = workdir / str(port)
            folder.mkdir()
            cluster.processes[port] = subprocess.Popen(
                [
                    binary,
                    *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder)),
                    *("--save", "", "--appendonly", "no"),
                    *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
                    *("--cluster-node-timeout", str(NODE_TIMEOUT_MS)),
                    # Replicas sync at once (the default waits 5 s for more replicas to join).
                    *("--repl-diskless-sync-delay", "0"),
                    *extra_args,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        for port in ports:
            _wait(f"redis-server on {port}", lambda p=port: _client(p).ping(), 10)
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{port}" for port in ports),
                "--cluster-replicas",
                str(replicas),
                "--cluster-yes",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

        def ready() -> bool:
            for port in ports:
                info = _client(port).cluster("INFO")
                if info["cluster_state"] != "ok" or int(info["cluster_slots_ok"]) != SLOTS:
                    return False
                if int(info["cluster_known_nodes"]) != len(ports):
                    return False
                replication = _client(port).info("replication")
                if replication["role"] == "slave" and replication["master_link_status"] != "up":
                    return False  # a replica that never synced cannot take over
            return True

        _wait("cluster_state:ok on every node", ready, 20)
        yield cluster
    finally:
        for process in cluster.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in cluster.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(workdir, ignore_errors=True)
