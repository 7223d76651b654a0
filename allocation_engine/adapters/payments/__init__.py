"""Payment providers for the workflow's `PaymentProvider` port, by payment kind.

`card`: a PaymentIntent-style HTTP API (`card.py`); `invoice`: pay after delivery
(`invoice.py`). `fake_provider.py` is a local test peer that speaks the card API.
"""

from allocation_engine.adapters.payments.card import CardProvider
from allocation_engine.adapters.payments.invoice import InvoiceProvider

__all__ = ["CardProvider", "InvoiceProvider"]
