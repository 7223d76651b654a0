"""The stand-alone outbox dispatcher: sends e-mails, pick lists and channel confirmations from
the Redis event log.

Server processes run a dispatcher of their own (`OrderConfig.dispatch`); this one runs beside
them, or instead of theirs, and shares the work through the same consumer group.
"""

from __future__ import annotations

import threading

from allocation_engine.adapters.redis.orders import RedisOrders
from allocation_engine.app.channels import connect_all
from allocation_engine.app.feeds import crm_events
from allocation_engine.app.orders import (
    OrderConfig,
    consumer_name,
    delivery_adapters,
    load_channel_file,
    load_workflow_file,
)
from allocation_engine.service.channels.confirmations import Confirmations
from allocation_engine.service.outbox import Dispatcher


def build_dispatcher(config: OrderConfig, consumer: str | None = None) -> Dispatcher:
    """A dispatcher over the Redis event log at `config.redis_url`."""
    if not config.redis_url:
        raise ValueError("the outbox dispatcher reads the Redis event log: give a Redis URL")
    notifier, wms, _ = delivery_adapters(config)
    store = RedisOrders.from_url(config.redis_url, config.lease_seconds)
    channels = load_channel_file(config, load_workflow_file(config))
    confirmations = Confirmations(channels, connect_all(channels).confirmers)
    crm = crm_events(config.crm_url, config.crm_secret, store.customer)
    return Dispatcher(store, notifier, wms, consumer or consumer_name(), confirmations, crm)


def run(dispatcher: Dispatcher, stopping: threading.Event, wait_seconds: float = 0.5) -> None:
    """Dispatches until `stopping` is set."""
    while not stopping.is_set():
        dispatcher.run_once(wait_seconds=wait_seconds)
