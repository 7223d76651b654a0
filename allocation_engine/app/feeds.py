"""The composition root of the feeds: the ERP feeds over the Redis store and the drop folder that
applies what lands in a directory (`allocation-engine feed`), and the CRM the outbox tells of
every order event.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from allocation_engine.adapters.clock import SystemClock
from allocation_engine.adapters.feeds.crm_http import HttpCrm
from allocation_engine.adapters.feeds.drop_folder import DropFolder, Taken
from allocation_engine.adapters.redis.inventory import RedisStore
from allocation_engine.engine import default_rules
from allocation_engine.errors import IdempotencyConflict, InvalidInput, VersionConflict
from allocation_engine.orders.model import Customer
from allocation_engine.ports.inventory import InventoryStore
from allocation_engine.service import Services
from allocation_engine.service.feeds.crm import CrmEvents
from allocation_engine.service.feeds.erp import ErpFeeds
from allocation_engine.service.feeds.table import explain
from allocation_engine.service.inventory import InventoryFeeds
from allocation_engine.service.planner import Planner
from allocation_engine.service.supply import SupplyFeeds

CRM_SECRET_ENV = "ALLOCATION_ENGINE_CRM_SECRET"
log = logging.getLogger("allocation_engine.feeds")


def erp_feeds(store: InventoryStore) -> ErpFeeds:
    """The ERP feeds over `store` (rules are not needed: a feed plans nothing)."""
    planner = Planner(store, SystemClock(), default_rules())
    return ErpFeeds(store, InventoryFeeds(store, planner), SupplyFeeds(store, planner), planner)


def open_erp_feeds(redis_url: str) -> ErpFeeds:
    """The ERP feeds over the Redis at `redis_url`."""
    return erp_feeds(RedisStore.from_url(redis_url))


def refusal(error: Exception) -> str | None:
    """Why a feed file is refused for good (bad rows, an older snapshot, a reused key), or None
    for an error worth retrying (the store did not answer)."""
    if isinstance(error, InvalidInput):
        return explain(error)
    if isinstance(error, VersionConflict | IdempotencyConflict):
        return str(error)
    if isinstance(error, OSError) and not isinstance(error, FileNotFoundError):
        return f"cannot be read: {error.strerror or error}"
    return None


def erp_drop_folder(folder: Path, feeds: ErpFeeds, settle_seconds: float = 1.0) -> DropFolder:
    """A drop folder applying every ERP file written into `folder`."""
    return DropFolder(folder, feeds.apply, refusal, settle_seconds)


class FeedWatcher(threading.Thread):
    """A server process's own ERP drop folder (`serve --feed-dir DIR`), swept every
    `interval` seconds over the server's store until `stop()`; each file taken is logged."""

    def __init__(self, services: Services, folder: Path, interval: float = 2.0) -> None:
        super().__init__(name=f"feed-{folder.name}", daemon=True)
        feeds = ErpFeeds(services.store, services.inventory, services.supply, services.planner)
        self._folder = erp_drop_folder(folder, feeds)
        self._interval = interval
        self._stopping = threading.Event()

    def run(self) -> None:
        self._folder.watch(
            self._stopping,
            self._interval,
            on_taken=self._logged,
            on_error=lambda error: log.error("feed folder %s: %s", self._folder.folder, error),
        )

    def _logged(self, taken: Taken) -> None:
        if taken.error is None:
            log.info("feed %s applied, moved to %s", taken.name, taken.moved_to)
        else:
            log.error("feed %s refused, moved to %s: %s", taken.name, taken.moved_to, taken.error)

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self.join(timeout)


def crm_events(
    url: str | None, secret: str, customers: Callable[[str], Customer | None]
) -> CrmEvents | None:
    """What tells the CRM at `url` of every order event (signed with `secret`); None without
    a CRM. A URL without a secret is refused: the CRM could not tell our messages from forgeries."""
    if not url:
        return None
    if not secret:
        raise InvalidInput.one("crm_url", url, f"needs a signing secret in ${CRM_SECRET_ENV}")
    return CrmEvents(HttpCrm(url, secret), customers)
