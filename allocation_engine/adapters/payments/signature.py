"""Webhook signatures in the PaymentIntent-style scheme (as Stripe signs its webhooks).

The provider sends `Signature: t=<unix time>,v1=<hex>` where the hex is
HMAC-SHA256(endpoint secret, "<t>." + raw body). The receiver recomputes it over the raw bytes
(never a re-serialised body), compares in constant time, and refuses a timestamp further than
`tolerance` seconds from its clock, so a captured webhook cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac

from allocation_engine.engine import InvalidInput

HEADER = "Signature"
TOLERANCE_SECONDS = 300


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The header value a provider sends with `payload`."""
    return f"t={timestamp},v1={_mac(payload, secret, timestamp)}"


def verify(
    payload: bytes, header: str, secret: str, now: float, tolerance: float = TOLERANCE_SECONDS
) -> None:
    """Raises InvalidInput naming `webhook.signature` unless the header signs `payload`."""
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        parts.setdefault(name, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError):
        raise InvalidInput.one("webhook.signature", header[:60], "no timestamp t=") from None
    expected = _mac(payload, secret, timestamp)
    if not any(hmac.compare_digest(expected, v) for v in parts.get("v1", [])):
        raise InvalidInput.one("webhook.signature", header[:60], "does not sign this payload")
    if abs(now - timestamp) > tolerance:
        raise InvalidInput.one(
            "webhook.signature", header[:60], f"timestamp is more than {tolerance:.0f}s off"
        )


def _mac(payload: bytes, secret: str, timestamp: int) -> str:
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
