"""Fixtures shared by every test package.

`redis_server` starts a throwaway redis-server on a free port for the session (installing the
Debian package first when the binary is missing and we run as root) and stops it afterwards. It
never touches a Redis it did not start. `redis_url` hands each test an empty database on it, and
`store` runs a test once against the in-memory store and once against Redis.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest
import redis

from allocation_engine.adapters.memory_store import MemoryStore
from allocation_engine.adapters.redis_store import RedisStore
from allocation_engine.engine.ports import InventoryStore


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    if os.geteuid() != 0:
        pytest.skip("redis-server is not installed and we are not root to install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "redis-server"], check=True, env=env)
    found = shutil.which("redis-server")
    if not found:
        pytest.fail("apt-get installed redis-server but it is not on PATH")
    return found


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """The URL of a redis-server this session started on a free port; stopped at the end."""
    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="ae-redis-")
    process = subprocess.Popen(
        [
            _redis_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None:
                    pytest.fail(f"redis-server exited with {process.returncode}")
                time.sleep(0.025)
        else:
            pytest.fail("redis-server did not answer within 5 s")
        yield url
    finally:
        client.close()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server: str) -> Iterator[str]:
    """An empty database on the session's own redis-server (flushed before each test)."""
    client = redis.Redis.from_url(redis_server)
    client.flushall()
    client.close()
    yield redis_server


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> InventoryStore:
    """An empty store of each kind: in memory, and Redis on the session's redis-server."""
    if request.param == "memory":
        return MemoryStore()
    return RedisStore.from_url(request.getfixturevalue("redis_url"))
