"""Fixtures of the gRPC end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.orders import Mailbox
from tests.support.shop import Shop, open_shop


@pytest.fixture
def shop(any_redis_url: str, mailbox: Mailbox, tmp_path: Path) -> Iterator[Shop]:
    """The order service over gRPC on a real redis-server (standalone, then a Cluster where the
    `any_redis_url` fixture says so), with a real SMTP server and the card test peer."""
    with open_shop(any_redis_url, mailbox, tmp_path) as shop:
        yield shop
