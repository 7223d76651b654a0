"""The outbox dispatcher over both order stores: every e-mail and pick list the event log asks
for goes out, a failing receiver loses nothing, and a lost acknowledgement sends nothing twice."""

from __future__ import annotations

import time
from pathlib import Path

from allocation_engine.adapters.mail.notifier import MailRenderer, SmtpNotifier
from allocation_engine.adapters.wms import FolderWms
from allocation_engine.orders.definition import default_workflows_text, parse_workflows
from allocation_engine.orders.events import EventType
from allocation_engine.service.outbox import Dispatcher, delivery_key, delivery_status
from tests.support.orders import TEMPLATES, Mailbox, World, b2b, b2c, free_port

RENDERER = MailRenderer("shop@example.com")


def drain(dispatcher: Dispatcher, rounds: int = 20) -> None:
    """Runs the dispatcher until a round finds nothing to do."""
    for _ in range(rounds):
        if dispatcher.run_once(wait_seconds=0.05) == 0:
            return


def place_two(world: World) -> list[str]:
    """A B2C and a B2B order: 3 e-mails and 2 pick lists between them."""
    world.flow.place(b2c("w-1", A=2))
    world.flow.place(b2b("po-1", C=1))
    return sorted(
        key
        for r in world.flow.list_orders()
        for e in world.flow.get(r.id).timeline
        if (key := delivery_key(e)) is not None
    )


def test_everything_asked_for_goes_out_once(
    any_world: World, mailbox: Mailbox, tmp_path: Path
) -> None:
    """Given two orders, when the dispatcher runs twice over the log, then each e-mail and each
    pick list went out exactly once and each has its receipt."""
    keys = place_two(any_world)
    assert len(keys) == 5
    notifier = SmtpNotifier("127.0.0.1", mailbox.port, RENDERER)
    dispatcher = Dispatcher(any_world.orders, notifier, FolderWms(tmp_path), "d-1")
    drain(dispatcher)
    drain(dispatcher)
    ids = sorted(m["Message-ID"] for m in mailbox.messages)
    assert ids == sorted({m["Message-ID"] for m in mailbox.messages}) and len(ids) == 3
    assert len(list(tmp_path.rglob("*.json"))) == 2
    assert all(any_world.orders.delivered(k) for k in keys)


def test_a_mail_server_that_is_down_loses_nothing(any_world: World, tmp_path: Path) -> None:
    """Given the mail server down, when the dispatcher runs, then the pick lists go out and the
    e-mails stay in the log; once the server is up and the lease has passed, each e-mail is
    sent exactly once."""
    place_two(any_world)
    port = free_port()
    notifier = SmtpNotifier("127.0.0.1", port, RENDERER, timeout=1)
    dispatcher = Dispatcher(any_world.orders, notifier, FolderWms(tmp_path), "d-1")
    drain(dispatcher)
    assert len(list(tmp_path.rglob("*.json"))) == 2
    box = Mailbox(port).start()
    try:
        time.sleep(0.3)  # the lease of the failed entries runs out
        drain(dispatcher)
        assert len(box.wait_for(3)) == 3
        drain(dispatcher)
        assert len({m["Message-ID"] for m in box.messages}) == len(box.messages) == 3
    finally:
        box.stop()


def test_a_lost_acknowledgement_sends_nothing_twice(
    any_world: World, mailbox: Mailbox, tmp_path: Path
) -> None:
    """Given a dispatcher that sent everything but died before acknowledging, when another one
    takes the entries over after the lease, then it finds the receipts and sends nothing."""
    place_two(any_world)
    notifier = SmtpNotifier("127.0.0.1", mailbox.port, RENDERER)
    wms = FolderWms(tmp_path)
    dying = Dispatcher(any_world.orders, notifier, wms, "d-1")
    for delivery in any_world.orders.claim("d-1", 100, 0.1):
        dying.deliver(delivery.event)  # sent and receipted, never acknowledged
    assert len(mailbox.messages) == 3
    time.sleep(0.3)
    drain(Dispatcher(any_world.orders, notifier, wms, "d-2"))
    assert len(mailbox.messages) == 3
    assert any_world.orders.claim("d-3", 100, 0.3) == []  # all acknowledged now


def test_a_message_no_template_can_render_is_recorded_as_failed(
    world: World, mailbox: Mailbox, tmp_path: Path
) -> None:
    """Given a workflow that mails `shipment_sent` when an order is placed (where no parcel
    exists to describe), when the dispatcher runs, then that e-mail is recorded as failed and
    not retried, and the other e-mails go out."""
    world.flow.workflows = parse_workflows(
        default_workflows_text().replace(
            '"payment.authorized" = "payment_confirmed"',
            '"payment.authorized" = "payment_confirmed"\n"order.placed" = "shipment_sent"',
            1,
        ),
        TEMPLATES,
    )
    record = world.flow.place(b2c("w-1", A=1)).record
    notifier = SmtpNotifier("127.0.0.1", mailbox.port, RENDERER)
    drain(Dispatcher(world.orders, notifier, FolderWms(tmp_path), "d-1"))
    status = {
        e.data.get("template", e.type): delivery_status(world.orders, e)
        for e in world.flow.get(record.id).timeline
        if delivery_key(e)
    }
    assert status == {
        "shipment_sent": "failed",
        "order_received": "sent",
        "payment_confirmed": "sent",
        EventType.SHIPMENT_RELEASED: "sent",
    }
    assert [m["Subject"] for m in mailbox.messages] == [  # German: shipping to Cologne
        "Wir haben Ihre Bestellung w-1 erhalten",
        "Zahlung für Bestellung w-1 bestätigt",
    ]
    time.sleep(0.3)  # past the lease: nothing comes back
    assert world.orders.claim("d-2", 10, 0.1) == []
