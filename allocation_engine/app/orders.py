"""The order workflow of one server process, wired from an `OrderConfig`.

`OrderRuntime.build` picks the adapters: the order store (memory, or Redis when the server has a
Redis URL), the payment providers by kind, the WMS hand-off, the e-mail notifier, and an outbox
dispatcher thread that sends what the event log asks for. Several server processes on one Redis
each run a dispatcher; the consumer group shares the work among them. `delivery_adapters` is the
one place that picks where e-mails and pick lists go, for `serve` and the stand-alone `outbox`.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import grpc

from allocation_engine.adapters.mail.notifier import FolderNotifier, MailRenderer, SmtpNotifier
from allocation_engine.adapters.memory.orders import MemoryOrders
from allocation_engine.adapters.payments import CardProvider, InvoiceProvider
from allocation_engine.adapters.payments.fake_provider import FakeCardProvider
from allocation_engine.adapters.payments.marketplace import MarketplaceProvider
from allocation_engine.adapters.payments.unconfigured import NoCardProvider
from allocation_engine.adapters.redis.orders import RedisOrders
from allocation_engine.adapters.wms import FolderWms, HttpWms
from allocation_engine.api.servicers.orders import SERVICE_NAME, OrderServicer
from allocation_engine.app.channels import (
    Connected,
    channel_workflows,
    connect_all,
    load_channels,
)
from allocation_engine.app.demo import DEMO_SHOP, demo_shop
from allocation_engine.app.feeds import crm_events
from allocation_engine.orders.definition import Workflows, default_workflows, load_workflows
from allocation_engine.ports.clock import Clock
from allocation_engine.ports.fulfilment import Wms
from allocation_engine.ports.notifications import Notifier
from allocation_engine.ports.orders import OrderStore, Outbox
from allocation_engine.ports.payments import PaymentProvider
from allocation_engine.proto.allocation.v1 import orders_pb2_grpc as opb_grpc
from allocation_engine.service import Services
from allocation_engine.service.channels.config import Channels
from allocation_engine.service.channels.confirmations import Confirmations
from allocation_engine.service.orders.flow import OrderFlow
from allocation_engine.service.orders.steps import Gateways
from allocation_engine.service.orders.stock import InventoryStock
from allocation_engine.service.orders.supply import SupplyNews
from allocation_engine.service.outbox import Dispatcher, DispatcherThread
from allocation_engine.testing.http_peer import HttpPeer


@dataclass(frozen=True)
class OrderConfig:
    """Where the workflow reaches the outside world; see `allocation-engine serve --help`."""

    workflows: str | None = None  # a workflow TOML file; None = the shipped defaults
    redis_url: str | None = None  # orders in Redis (else in memory)
    smtp: str | None = None  # host:port of the mail server; None = .eml files in mail_dir
    mail_from: str = "shop@allocation-engine.local"
    mail_dir: str = "var/mail"
    wms_dir: str = "var/wms"
    wms_url: str | None = None  # POST pick lists here instead of writing them to wms_dir
    card_url: str | None = None  # the PaymentIntent-style API; None: the test peer in demo mode
    card_key: str = ""
    webhook_secret: str = ""
    demo: bool = False
    dispatch: bool = True  # run an outbox dispatcher in this process
    lease_seconds: float = 30.0  # unacknowledged outbox entries are handed out again after this
    channels: str | None = None  # a channels.toml: connected shops and marketplaces
    crm_url: str | None = None  # POST every order event here (signed), through the outbox
    crm_secret: str = ""  # the CRM's HMAC-SHA256 signing secret


def consumer_name() -> str:
    """This process's name in the outbox consumer group: host and pid."""
    return f"{socket.gethostname()}-{os.getpid()}"


def delivery_adapters(config: OrderConfig) -> tuple[Notifier, Wms, list[str]]:
    """The e-mail notifier and the WMS hand-off `config` asks for, with a note on each."""
    renderer = MailRenderer(config.mail_from)
    notifier: Notifier
    notes: list[str] = []
    if config.smtp:
        host, _, port = config.smtp.rpartition(":")
        notifier = SmtpNotifier(host or "127.0.0.1", int(port), renderer)
        notes.append(f"e-mails go to SMTP {config.smtp}")
    else:
        notifier = FolderNotifier(config.mail_dir, renderer)
        notes.append(f"e-mails are written to {config.mail_dir}/ as .eml files")
    wms: Wms
    if config.wms_url:
        wms = HttpWms(config.wms_url)
        notes.append(f"pick lists are POSTed to {config.wms_url}")
    else:
        wms = FolderWms(config.wms_dir)
        notes.append(f"pick lists are written to {config.wms_dir}/<node>/")
    return notifier, wms, notes


def load_workflow_file(config: OrderConfig) -> Workflows:
    """The workflows `config` names (its file, else the shipped defaults), validated."""
    templates = MailRenderer(config.mail_from).templates()
    if config.workflows:
        return load_workflows(config.workflows, templates)
    return default_workflows(templates)


def load_channel_file(config: OrderConfig, workflows: Workflows) -> Channels:
    """The channels `config` names, validated against the platforms and the workflows."""
    return load_channels(config.channels, [w.name for w in workflows.workflows])


def template_names() -> frozenset[str]:
    """The e-mail templates shipped, which workflow files may name in their `notify` steps."""
    return frozenset(MailRenderer("check@localhost").templates())


class OrderRuntime:
    """The order workflow of one server process: servicer, flow, outbox dispatcher."""

    def __init__(
        self,
        flow: OrderFlow,
        store: OrderStore,
        outbox: Outbox,
        dispatcher: Dispatcher,
        *,
        dispatch: bool = True,
        card_peer: FakeCardProvider | None = None,
        notes: tuple[str, ...] = (),
        channels: Channels | None = None,
        connected: Connected | None = None,
        peers: tuple[HttpPeer, ...] = (),
    ) -> None:
        """`peers`: local test peers this runtime started (the demo shop) and stops."""
        self.flow, self.store, self.outbox, self.dispatcher = flow, store, outbox, dispatcher
        self.card_peer = card_peer
        self.notes = notes
        self.channels = channels or Channels()
        self.connected = connected or Connected({}, {}, {})
        self.peers = peers
        self._thread = DispatcherThread(dispatcher) if dispatch else None

    @classmethod
    def build(
        cls,
        services: Services,
        config: OrderConfig,
        clock: Clock,
        channels: Channels | None = None,
    ) -> OrderRuntime:
        """`channels`: the channel file already loaded (serve loads it first, for the
        planner's fences); None loads the one `config` names."""
        workflows = load_workflow_file(config)
        if channels is None:
            channels = load_channel_file(config, workflows)
        notes: list[str] = []
        peers: list[HttpPeer] = []
        environ = None
        if config.demo and not channels.channels:
            shop, channels, environ = demo_shop()
            peers.append(shop)
            notes.append(
                f"channel {DEMO_SHOP}: a local Shopify test peer at {shop.url} takes the "
                "fulfillments"
            )
        connected = connect_all(channels, {**os.environ, **(environ or {})})
        store: MemoryOrders | RedisOrders = (
            RedisOrders.from_url(config.redis_url, config.lease_seconds)
            if config.redis_url
            else MemoryOrders(config.lease_seconds)
        )
        peer = None
        card: PaymentProvider
        if config.card_url:
            card = CardProvider(
                config.card_url, config.card_key, config.webhook_secret, clock=clock
            )
        elif config.demo:
            peer = FakeCardProvider().start()
            card = CardProvider(peer.url, peer.api_key, peer.webhook_secret, clock=clock)
            notes.append(f"card payments go to the local test peer at {peer.url} (no money moves)")
        else:
            card = NoCardProvider()
            notes.append("no card provider (--card-url): card orders are refused as UNAVAILABLE")
        notifier, wms, sent_to = delivery_adapters(config)
        notes += sent_to
        payments: dict[str, PaymentProvider] = {
            "card": card,
            "invoice": InvoiceProvider(),
            "marketplace": MarketplaceProvider(),
        }
        flow = OrderFlow(
            workflows,
            store,
            Gateways(InventoryStock(services), payments),
            clock,
            channel_workflows=channel_workflows(channels),
        )
        services.supply_listeners.append(SupplyNews(flow, services.reservations))
        if channels.channels:
            notes.append(f"sales channels: {', '.join(c.name for c in channels)}")
        return cls(
            flow,
            store,
            store,
            Dispatcher(
                store,
                notifier,
                wms,
                consumer_name(),
                Confirmations(channels, connected.confirmers),
                crm_events(config.crm_url, config.crm_secret, store.customer),
            ),
            dispatch=config.dispatch,
            card_peer=peer,
            notes=tuple(notes),
            channels=channels,
            connected=connected,
            peers=tuple(peers),
        )

    def servicer(self) -> OrderServicer:
        """The OrderService servicer over this runtime (the gRPC and HTTP edges share it)."""
        connected = self.connected
        return OrderServicer(
            self.flow,
            self.outbox,
            connected.confirmers,
            {*connected.webhooks, *connected.importers},
        )

    def register(self, server: grpc.Server) -> str:
        """Adds OrderService to `server`; returns its name (for health and reflection)."""
        opb_grpc.add_OrderServiceServicer_to_server(
            OrderServicer(self.flow, self.outbox, self.connected.confirmers), server
        )
        return SERVICE_NAME

    def start(self) -> OrderRuntime:
        """Starts the dispatcher (`notes` say where e-mails, pick lists and payments go)."""
        if self._thread is not None:
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.stop()
        self.stop_peers()

    def stop_peers(self) -> None:
        """Stops the local test peers this runtime started (demo mode)."""
        if self.card_peer is not None:
            self.card_peer.stop()
        for peer in self.peers:
            peer.stop()
