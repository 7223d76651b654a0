"""Workflow files: the shipped defaults, choosing a workflow per order, and bad files refused
with every problem named by workflow, step and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from allocation_engine.engine import CustomerType, InvalidInput
from allocation_engine.orders.definition import default_workflows, load_workflows, parse_workflows
from tests.support.orders import TEMPLATES

DATA = Path(__file__).parent.parent / "data" / "workflows"


def test_the_shipped_workflows_are_valid_and_use_existing_templates() -> None:
    """Given the shipped file and the templates on disk, then the three workflows load, B2C pays
    by card up front, B2B pays the invoice after delivery, and marketplace orders (paid on the
    marketplace) are never chosen by conditions, only by a channel naming them."""
    workflows = default_workflows(TEMPLATES)
    b2c, b2b, marketplace = workflows.workflows
    assert (b2c.name, b2c.payment) == ("b2c-prepaid", "card")
    assert [s.kind for s in b2c.steps] == [
        "notify",
        "await_payment",
        "reserve",
        "capture_payment",
        "release_to_wms",
        "await_shipment",
        "await_delivery",
    ]
    assert (b2b.name, b2b.payment) == ("b2b-invoice", "invoice")
    kinds = [s.kind for s in b2b.steps]
    assert kinds.index("await_delivery") < kinds.index("invoice") < kinds.index("await_payment")
    assert workflows.templates <= TEMPLATES
    assert (marketplace.name, marketplace.payment) == ("marketplace-paid", "marketplace")
    for customer_type in CustomerType:
        assert workflows.select("amazon-de", customer_type, 10_000).name != marketplace.name


def test_orders_get_the_first_workflow_whose_conditions_match() -> None:
    """Given workflows with channel and order value conditions, when orders are placed, then
    each gets the first match, and an order no workflow takes is refused by name."""
    workflows = parse_workflows(
        """
        [[workflow]]
        name = "big-marketplace"
        payment = "card"
        when = { channels = ["marketplace"], min_order_value = 500.00 }
        steps = [{ step = "await_payment", until = "captured" }, { step = "reserve" },
                 { step = "release_to_wms" }]

        [[workflow]]
        name = "consumer"
        payment = "card"
        when = { customer_types = ["B2C"] }
        steps = [{ step = "await_payment", until = "captured" }, { step = "reserve" },
                 { step = "release_to_wms" }]
        """
    )
    assert workflows.select("marketplace", CustomerType.B2C, 50_000).name == "big-marketplace"
    assert workflows.select("marketplace", CustomerType.B2C, 49_999).name == "consumer"
    assert workflows.select("web", CustomerType.B2C, 90_000).name == "consumer"
    with pytest.raises(InvalidInput) as raised:
        workflows.select("web", CustomerType.B2B, 100)
    assert raised.value.problems[0].field == "order"
    assert "no workflow matches" in raised.value.problems[0].problem


def test_a_bad_file_is_refused_with_every_problem_named() -> None:
    """Given a file with many mistakes, when it is loaded, then every problem is reported at
    once, each naming the workflow, the step (index and kind) and what is wrong."""
    with pytest.raises(InvalidInput) as raised:
        load_workflows(DATA / "broken.toml", TEMPLATES)
    found = {(p.field, p.problem) for p in raised.value.problems}
    w = "workflow[card-in-wrong-order]"
    expected = {
        (f"{w}.when.customer_types", "must be a list drawn from ['B2C', 'B2B']"),
        (f"{w}.when.min_order_value", "exceeds max_order_value"),
        (f"{w}.steps[3] (release_to_wms).when", "unknown key; expected one of ['step']"),
        (f"{w}.steps[4] (notify).template", "no such e-mail template"),
        (f"{w}.steps[5].step", _unknown_step()),
        (f"{w}.notify.parcel.lost", _unknown_event()),
        (f"{w}.name", "repeats an earlier workflow's name"),
        (f"{w}.payment", "must be one of ['card', 'invoice', 'marketplace']"),
        (f"{w}.steps", "needs a reserve step: every order is allocated"),
        (f"{w}.steps[0] (release_to_wms)", "needs an earlier reserve step"),
    }
    assert expected <= found, expected - found


def test_steps_in_the_wrong_order_are_named() -> None:
    """Given a card workflow that captures before the payment is authorized and bills an
    invoice, when it is parsed, then both steps are named with the reason."""
    with pytest.raises(InvalidInput) as raised:
        parse_workflows(
            """
            [[workflow]]
            name = "wrong"
            payment = "card"
            steps = [
              { step = "capture_payment" },
              { step = "await_payment", until = "authorized" },
              { step = "reserve" },
              { step = "release_to_wms" },
              { step = "invoice" },
            ]
            """
        )
    problems = {str(p) for p in raised.value.problems}
    assert (
        "workflow[wrong].steps[0] (capture_payment)='capture_payment': "
        "needs an earlier await_payment step"
    ) in problems
    assert (
        "workflow[wrong].steps[4] (invoice)='card': an invoice step needs payment = \"invoice\""
    ) in problems


@pytest.mark.parametrize(
    ("steps", "field", "problem"),
    [
        (
            '{ step = "await_payment", until = "authorized" }, { step = "reserve" },'
            ' { step = "release_to_wms" }',
            "workflow[w].steps[0] (await_payment)",
            "the authorized money is never captured: add a capture_payment step after it",
        ),
        (
            '{ step = "await_payment", until = "captured" }, { step = "reserve" },'
            ' { step = "reserve" }, { step = "release_to_wms" }',
            "workflow[w].steps[2] (reserve)",
            "repeats steps[1]; it may appear once",
        ),
        (
            '{ step = "reserve" }, { step = "release_to_wms" }',
            "workflow[w].steps",
            "a card workflow needs an await_payment step",
        ),
        (
            '{ step = "await_payment", until = "soon" }, { step = "reserve" },'
            ' { step = "release_to_wms" }',
            "workflow[w].steps[0] (await_payment).until",
            "must be one of ['authorized', 'captured']",
        ),
    ],
    ids=["never-captured", "reserve-twice", "no-payment", "bad-until"],
)
def test_each_rule_names_its_step(steps: str, field: str, problem: str) -> None:
    """Given a card workflow breaking one rule, then the problem names the step and the rule."""
    text = f'[[workflow]]\nname = "w"\npayment = "card"\nsteps = [{steps}]\n'
    with pytest.raises(InvalidInput) as raised:
        parse_workflows(text)
    assert (field, problem) in {(p.field, p.problem) for p in raised.value.problems}


def test_an_invoice_workflow_waits_for_the_money_after_billing() -> None:
    """Given an invoice workflow that waits for an authorization, then it is told invoices are
    paid, and that the invoice must come first."""
    text = """
    [[workflow]]
    name = "b2b"
    payment = "invoice"
    steps = [{ step = "await_payment" }, { step = "reserve" }, { step = "release_to_wms" }]
    """
    with pytest.raises(InvalidInput) as raised:
        parse_workflows(text)
    problems = {(p.field, p.problem) for p in raised.value.problems}
    assert (
        "workflow[b2b].steps[0] (await_payment)",
        'invoices are paid: use until = "captured"',
    ) in problems
    assert ("workflow[b2b].steps[0] (await_payment)", "needs an earlier invoice step") in problems
    assert ("workflow[b2b].steps", "an invoice workflow needs an invoice step") in problems


def test_not_toml_is_refused_and_names_the_file_content() -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_workflows("[[workflow]\nname=")
    assert raised.value.problems[0].field == "workflows"
    assert "not valid TOML" in raised.value.problems[0].problem


def _unknown_step() -> str:
    return (
        "unknown step; the library has ['await_delivery', 'await_payment', 'await_shipment', "
        "'capture_payment', 'invoice', 'notify', 'release_to_wms', 'reserve']"
    )


def _unknown_event() -> str:
    from allocation_engine.orders.events import NOTIFIABLE

    return f"unknown event type; known: {[t.value for t in NOTIFIABLE]}"
