"""A throwaway redis-server on a free port, for tests, benchmarks and scale measurements.

It never touches a Redis it did not start: it picks a free loopback port, keeps nothing on disk,
and stops (and removes its folder) when the `with` block ends. When the binary is missing and the
process runs as root, it installs Debian's redis-server package first.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import redis


class RedisNotAvailable(RuntimeError):
    """redis-server is missing and cannot be installed here."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def redis_binary() -> str:
    """The redis-server binary, installed with apt-get when missing and we are root."""
    found = shutil.which("redis-server")
    if found:
        return found
    if os.geteuid() != 0:
        raise RedisNotAvailable("redis-server is not installed and we are not root to install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "redis-server"], check=True, env=env)
    found = shutil.which("redis-server")
    if not found:
        raise RedisNotAvailable("apt-get installed redis-server but it is not on PATH")
    return found


@contextmanager
def throwaway_redis(extra_args: Sequence[str] = ()) -> Iterator[str]:
    """Starts redis-server on a free port; yields its URL; stops it afterwards."""
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="ae-redis-")
    process = subprocess.Popen(
        [
            redis_binary(),
            *("--port", str(port), "--bind", "127.0.0.1", "--dir", workdir),
            *("--save", "", "--appendonly", "no"),
            *extra_args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None:
                    raise RedisNotAvailable(
                        f"redis-server exited with {process.returncode}"
                    ) from None
                if time.monotonic() > deadline:
                    raise RedisNotAvailable("redis-server did not answer within 10 s") from None
                time.sleep(0.025)
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
