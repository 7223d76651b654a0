"""Customer e-mail: every template the workflows send renders in German and English from the
context a real order produces, and goes out over SMTP to a real (local) mail server."""

from __future__ import annotations

from datetime import timedelta

import pytest

from allocation_engine.adapters.mail.notifier import MailRenderer, SmtpNotifier
from allocation_engine.engine.rules import default_rules_text
from allocation_engine.orders.commands import (
    Inspection,
    InspectReturn,
    ReceiveReturn,
    RejectShipment,
    RequestReturn,
    ReturnItem,
)
from allocation_engine.orders.events import EventType
from allocation_engine.ports.inventory import SupplyLot
from allocation_engine.ports.notifications import Notification, Undeliverable
from allocation_engine.service.outbox import notification_from
from tests.service.orders.test_flow import ship_and_deliver
from tests.support.orders import TEMPLATES, Mailbox, World, b2b, b2c


def _notifications(world: World) -> list[Notification]:
    """Every e-mail a B2C order with a return, a B2B order with a credit note, an order no node
    could send after a reject and a backordered one ask for."""
    record = ship_and_deliver(world, world.flow.place(b2c("w-1", A=2, B=1)).record)
    record, rid = world.flow.request_return(RequestReturn(record.id, (ReturnItem("A", 2),), "r"))
    world.flow.receive_return(ReceiveReturn(record.id, rid, "WH-KOELN", (ReturnItem("A", 2),), "v"))
    world.flow.inspect_return(InspectReturn(record.id, rid, (Inspection("A", 1, 1),), "i"))
    business = ship_and_deliver(world, world.flow.place(b2b("po-1", C=2)).record)
    business, rid = world.flow.request_return(
        RequestReturn(business.id, (ReturnItem("C", 1),), "r")
    )
    world.flow.receive_return(
        ReceiveReturn(business.id, rid, "WH-BERLIN", (ReturnItem("C", 1),), "v")
    )
    world.flow.inspect_return(InspectReturn(business.id, rid, (Inspection("C", 1, 0),), "i"))
    # 4 cups: Koeln finds none, Berlin has 3 left: no node can send them, the order is cancelled.
    rejected = world.flow.place(b2c("w-2", A=4)).record
    world.flow.reject_shipment(
        RejectShipment(rejected.id, rejected.shipments[0].id, "no_stock", "x")
    )
    # 7 filter packs wait for a purchase order at Koeln (Berlin has 6 on the shelf).
    text = default_rules_text().replace("\nenabled = false", "\nenabled = true")
    world.services.store.put_rules(text)
    due = world.services.planner.today() + timedelta(days=1)
    world.services.supply.put("po", "po", [SupplyLot("PO-1", "WH-KOELN", "C", 10, due)])
    waiting = world.flow.place(b2c("w-3", C=7)).record
    assert waiting.shipments[0].ready_on == due.isoformat()
    events = [
        e
        for order in (record, business, rejected, waiting)
        for e in world.flow.get(order.id).timeline
    ]
    return [notification_from(e) for e in events if e.type is EventType.NOTIFICATION_REQUESTED]


def test_every_template_renders_in_both_languages(world: World) -> None:
    """Given the e-mails two real orders ask for, when each is rendered in German and English,
    then each has a subject and a body naming the order, in the right language."""
    renderer = MailRenderer("shop@example.com")
    notifications = _notifications(world)
    assert {n.template for n in notifications} >= TEMPLATES - {
        "payment_failed",
        "order_delayed",
        "payment_received",
    }
    for n in notifications:
        for language, greeting in (("en", "Hello"), ("de", "Guten Tag")):
            message = renderer.render(Notification(**{**n.__dict__, "language": language}))
            body = message.get_content()
            assert message["Subject"], n.template
            assert body.startswith(greeting), (n.template, language)
            assert n.context["order"]["external_id"] in body


def test_a_message_goes_over_smtp_with_a_stable_message_id(mailbox: Mailbox) -> None:
    """Given a German shipping e-mail, when it is sent twice over SMTP, then both copies carry
    the same Message-ID (from the notification key), German subject and UTF-8 body."""
    notification = Notification(
        "O-000001/8",
        "ada@example.com",
        "Ada Lovelace",
        "de",
        "shipment_sent",
        {
            "order": {
                "id": "O-000001",
                "external_id": "web-1",
                "currency": "EUR",
                "total": 1990,
                "items": [
                    {"sku": "A", "name": "Tasse", "quantity": 1, "unit_price": 1990, "total": 1990}
                ],
                "address": {},
            },
            "customer": {"name": "Ada Lovelace"},
            "event": {
                "shipment_id": "O-000001-S1",
                "node_id": "WH-KÖLN",
                "carrier": "DHL",
                "tracking_number": "00340434",
                "lines": [{"sku": "A", "quantity": 1}],
            },
        },
    )
    notifier = SmtpNotifier("127.0.0.1", mailbox.port, MailRenderer("shop@example.com"))
    notifier.send(notification)
    notifier.send(notification)
    first, second = mailbox.messages
    assert first["Message-ID"] == second["Message-ID"] == "<O-000001.8@example.com>"
    assert first["Subject"] == "Ihr Paket O-000001-S1 ist unterwegs"
    assert first["To"] == "Ada Lovelace <ada@example.com>"
    body = first.get_content()
    assert "Sendungsnummer: 00340434" in body
    assert "1 x Tasse (A)" in body
    assert "Grüßen" in body


@pytest.mark.parametrize(
    ("reply", "permanent"), [("550 5.1.1 No such mailbox", True), ("451 4.3.0 Try later", False)]
)
def test_a_refused_recipient_is_undeliverable_only_when_the_refusal_is_permanent(
    mailbox: Mailbox, reply: str, permanent: bool
) -> None:
    """Given a mail server that refuses the recipient, when the e-mail is sent, then a 5xx
    refusal is Undeliverable (never retried) and a 4xx one an error the outbox retries."""
    mailbox.refuse["gone@example.com"] = reply
    notification = Notification(
        "O-1/1", "gone@example.com", "Gone", "en", "order_received", _context()
    )
    notifier = SmtpNotifier("127.0.0.1", mailbox.port, MailRenderer("shop@example.com"))
    with pytest.raises(Exception) as raised:
        notifier.send(notification)
    assert isinstance(raised.value, Undeliverable) is permanent
    assert mailbox.messages == []


def _context() -> dict[str, object]:
    return {
        "order": {
            "id": "O-1",
            "external_id": "web-1",
            "currency": "EUR",
            "total": 1990,
            "items": [
                {"sku": "A", "name": "Cup", "quantity": 1, "unit_price": 1990, "total": 1990}
            ],
            "address": {},
        },
        "customer": {"name": "Gone"},
        "event": {},
    }
