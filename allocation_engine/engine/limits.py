"""The contract's ranges, written once: every number and string a caller may send is bounded.

The gRPC edge (`api/bounds.py`) refuses a value past these with INVALID_ARGUMENT naming the field
before anything is read or written; the proto comments and the README's "Status codes" quote
them. Why these numbers:

* Units (quantities, on_hand, safety stock, deltas) stay <= 10^9, so a sum over a few million
  positions or a plan's units times a cost stays far inside int64, and every count stays an
  exact integer where it is held as a double (Lua numbers in Redis, JSON in other languages).
* Versions and revisions stay below 2^53 for the same reason: a Lua number above it is rounded,
  and a rounded version defeats the stale-version check.
* Money is in minor units and stays <= 10^15 (ten trillion in a two-decimal currency), a whole
  order's total included, which is below 2^53.
* Ids, skus and keys are short strings (they become Redis keys and appear in messages); free
  text is longer but bounded; rule sets are TOML with bounded size and nesting.
"""

from __future__ import annotations

MAX_UNITS = 10**9
"""Most units of anything: an order line, on_hand, safety_stock, |on_hand_delta|, a return."""

MAX_VERSION = 2**53 - 1
"""Highest snapshot version or rules revision (exact as a double, so exact in Lua)."""

MAX_MONEY = 10**15
"""Most minor units of money: a unit price, a payment amount, an order's total."""

MAX_COST = 10**6
"""Largest per-unit or per-shipment node cost (a double, currency units)."""

MAX_PLAN_NUMBER = 1e15
"""Largest distance, cost or gap a plan sent back (Reserve with a plan) may carry."""

MAX_TTL_SECONDS = 7 * 24 * 3600
"""Longest hold a Reserve may ask for (0 = the server's default)."""

MAX_ID_CHARS = 128
"""Longest id, sku, node id, idempotency key, code or token."""

MAX_EMAIL_CHARS = 254
"""Longest e-mail address (RFC 5321's path limit)."""

MAX_TEXT_CHARS = 1024
"""Longest free text: names, streets, reasons, signatures."""

MAX_RULES_CHARS = 256 * 1024
"""Longest rule set TOML."""

MAX_RULES_NESTING = 32
"""Deepest nesting of arrays and inline tables in a rule set TOML."""

MAX_PAYLOAD_BYTES = 1024 * 1024
"""Largest webhook payload."""

MAX_PAGE_SIZE = 500
"""Most orders one ListOrders page returns."""

MAX_PAGE_OFFSET = 10**9
"""Highest offset a ListOrders page token may stand for."""

MAX_SHIPMENTS = 1_000
"""Most shipments a rule set or an order may allow (`fences.max_shipments`)."""
