"""Amazon Selling Partner API: merchant-fulfilled orders polled, shipments confirmed back.

Follows the Orders API v0 and the Tokens API 2021-03-01 on the regional SP-API endpoint
(`base_url`, e.g. https://sellingpartnerapi-eu.amazon.com).

Auth: Login with Amazon. `POST {lwa_url}/auth/o2/token` (option `lwa_url`, default
https://api.amazon.com), form-encoded `grant_type=refresh_token`, `refresh_token`,
`client_id`, `client_secret` (the three credentials), answers an `access_token` valid for
`expires_in` seconds (an hour); it is kept until a minute before it expires and sent as the
`x-amz-access-token` header. Since 2 October 2023 SP-API no longer requires AWS IAM or AWS
Signature Version 4 (Amazon's changelog "SP-API no longer requires AWS IAM or AWS Signature
Version 4"), so requests are not SigV4-signed. The buyer's address and e-mail are personal
data: `getOrders` returns them only to a Restricted Data Token, so the adapter first calls
`POST /tokens/2021-03-01/restrictedDataToken` with `restrictedResources` [{`method` GET,
`path` /orders/v0/orders, `dataElements` [buyerInfo, shippingAddress]}] and sends the RDT
(kept for its `expiresIn`) as `x-amz-access-token` on `getOrders`; the app needs the
Direct-to-Consumer Delivery (and, for VAT ids, Tax Invoicing) roles.

Inbound (`OrderImporter`), polled: Amazon pushes order changes only through the Notifications
API to SQS or EventBridge, never to an HTTP endpoint, so there is no webhook (and no signature
to verify). `GET /orders/v0/orders` with `MarketplaceIds=<marketplace_id>`, `CreatedAfter=<t>`,
`FulfillmentChannels=MFN`, `MaxResultsPerPage=<page_size>` (orders Amazon ships itself, AFN, are
never ours; `page_size` defaults to 20, at most 100, so one page's getOrderItems calls fit in
that operation's burst of 30), then `NextToken` (which overrides the other filters) while a
`NextToken` comes back; each order's lines from `GET
/orders/v0/orders/{AmazonOrderId}/orderItems` (also paged by `NextToken`). `Unshipped` orders
are taken; `Pending` ones (payment not yet authorised: no address, not to be shipped) are held
in the cursor and asked for again by `AmazonOrderIds` at the start of each later sweep until
they are Unshipped (taken) or anything else (dropped), every one of them however many, in
calls of at most 50 ids (the `AmazonOrderIds` limit); every other status is passed over (a
`PartiallyShipped` one at first sight is being shipped by
someone else). The cursor is compact JSON: `after` (the sweep's CreatedAfter, which Amazon
treats as "at or after"), `seen` (ids already handed out whose PurchaseDate is `after`, so
orders sharing that instant are not taken twice), `next` (the NextToken mid-sweep),
`top`/`top_ids` (the latest PurchaseDate of the sweep and its ids, the next sweep's
`after`/`seen`) and `pending`. "" starts at the `created_after` option (ISO 8601, required).
Amazon lists orders about two minutes after they are placed. Rate limits: the Orders API allows
little (getOrders 0.0167 requests/s, burst 20; getOrderItems 0.5/s, burst 30) and answers 429
with `x-amzn-RateLimit-Limit` (the operation's rate, requests per second) and no Retry-After;
the HTTP client waits one request's worth of that rate (1 / limit, capped by the retry policy's
`max_retry_after`) before it retries, and an exhausted budget is PeerUnavailable for the next
poll.

Mapping: `external_id` = `AmazonOrderId` (3-7-7 digits). Lines: `SellerSKU` (else `ASIN`),
`QuantityOrdered` (items at 0, cancelled, are passed over), `Title`; `ItemPrice.Amount` is the
LINE total (unit price x quantity, VAT included in EU marketplaces) and
`PromotionDiscount.Amount` the line's discount, so the unit price is their difference divided
by the quantity in minor units of `CurrencyCode`; when it does not divide evenly, the line is
split in two lines of the same sku whose units differ by one minor unit, so the line total stays
exact. Ship-to: `ShippingAddress` `Name`, `CompanyName`, `AddressLine1..3`, `PostalCode`,
`City`, `CountryCode` (no coordinates). `email` = `BuyerInfo.BuyerEmail` (Amazon's relay
address), `customer_name` = `BuyerInfo.BuyerName`; Amazon gives no buyer id. `b2b` =
`IsBusinessOrder`; company = `ShippingAddress.CompanyName` or
`BuyerInfo.BuyerTaxInfo.CompanyLegalName`; tax id = the `VATNumber` of
`BuyerInfo.BuyerTaxInfo.TaxClassifications`. `paid` = True (Amazon collects). `currency` =
`OrderTotal.CurrencyCode`. Not mapped: gift wrap, shipping price, `IsPrime` /
`LatestShipDate` promises, the marketplace's language.

Outbound (`ShipmentConfirmer`): `GET .../orderItems` for the `OrderItemId` of each SellerSKU,
then `POST /orders/v0/orders/{AmazonOrderId}/shipmentConfirmation` with `marketplaceId` and
`packageDetail` {`packageReferenceId`, `carrierCode`, `carrierName` (when the code is
`Other`), `trackingNumber`, `shipDate` (ISO 8601 UTC), `orderItems` [{`orderItemId`,
`quantity`}]}; Amazon answers 204. `packageReferenceId` must be a positive number unique in the
order: it is derived from our shipment id (the first 48 bits of its SHA-256), and Amazon
treats a second confirmation with the same packageReferenceId as an edit of that package, not
a new one, so the call is idempotent and safe to retry. `carrierCode`: DHL, Deutsche Post,
DPD, GLS, Hermes, UPS, FedEx, TNT by our carrier name, else `Other` with `carrierName`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from allocation_engine.adapters.channels import Connection
from allocation_engine.adapters.channels.money import minor_units
from allocation_engine.adapters.channels.options import OptionReader
from allocation_engine.adapters.channels.payload import (
    api_object,
    is_seconds,
    is_whole,
    obj,
    utc_time,
)
from allocation_engine.adapters.channels.token_cache import TokenCache
from allocation_engine.adapters.http_client import HttpClient, RetryPolicy, retry_after
from allocation_engine.errors import InvalidInput, PeerUnavailable, ProblemCollector
from allocation_engine.ports.channels import (
    ChannelAddress,
    ChannelLine,
    ChannelOrder,
    ChannelSettings,
    ImportPage,
    ParcelShipped,
)

CREDENTIALS: tuple[str, ...] = ("refresh_token", "client_id", "client_secret")
OPTIONS: dict[str, bool] = {
    "marketplace_id": True,
    "created_after": True,
    "lwa_url": False,
    "page_size": False,
}

LWA_URL = "https://api.amazon.com"
LISTING_DELAY = timedelta(minutes=2)
"""Amazon lists an order about two minutes after it was placed, and takes no CreatedBefore
later than two minutes before the request: each sweep reads only up to then, so the cursor
never moves past a window where an order could still appear."""
ORDERS = "/orders/v0/orders"
RDT_PATH = "/tokens/2021-03-01/restrictedDataToken"
TAKEN = frozenset({"Unshipped"})
MAX_PENDING = 50
MAX_PAGE_SIZE = 100  # a larger page_size reads 100
TOKEN_MARGIN = 60.0  # seconds before expiry a token is minted anew
CARRIER_CODES = {
    "dhl": "DHL",
    "deutsche post": "Deutsche Post",
    "dpd": "DPD",
    "gls": "GLS",
    "hermes": "Hermes",
    "ups": "UPS",
    "fedex": "FedEx",
    "tnt": "TNT",
}
"""Our carrier name (lower-case) -> Amazon's CarrierCode; any other is `Other` + carrierName."""


def connect(
    settings: ChannelSettings, secrets: Mapping[str, str], *, retry: RetryPolicy | None = None
) -> Connection:
    """The importer and the confirmer of one seller account on one marketplace."""
    channel = AmazonChannel(settings, secrets, retry=retry)
    return Connection(importer=channel, confirmer=channel)


def rate_limit_wait(response: httpx.Response) -> float | None:
    """The wait a throttled SP-API call asks for: Retry-After where sent, else the time one
    request's token takes to come back at the operation's rate (`x-amzn-RateLimit-Limit`)."""
    asked = retry_after(response)
    if asked is not None:
        return asked
    try:
        rate = float(response.headers.get("x-amzn-ratelimit-limit", ""))
    except ValueError:
        return None
    return 1.0 / rate if rate > 0 else None


class AmazonChannel:
    """Polls one seller's merchant-fulfilled orders on one marketplace and confirms them."""

    def __init__(
        self,
        settings: ChannelSettings,
        secrets: Mapping[str, str],
        *,
        retry: RetryPolicy | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """`now`: the wall clock, which bounds each sweep (`LISTING_DELAY`)."""
        self._now = now
        read = OptionReader(settings, secrets)
        self._secrets = read.secrets(CREDENTIALS)
        self._marketplace = read.text("marketplace_id", required=True)
        self._start = _iso(read.time("created_after"))
        self._page_size = min(read.count("page_size", 20), MAX_PAGE_SIZE)
        read.done()
        self.name = settings.name
        self._lwa = HttpClient(read.text("lwa_url", LWA_URL), retry=retry)
        self._api = HttpClient(
            settings.base_url,
            headers={"User-Agent": "allocation-engine/1 (Language=Python)"},
            retry=retry,
            wait_of=rate_limit_wait,
        )
        self._access = TokenCache(self._exchange, TOKEN_MARGIN)
        self._restricted = TokenCache(self._restricted_token, TOKEN_MARGIN)

    # --- tokens ------------------------------------------------------------------------------

    def _exchange(self) -> tuple[str, float]:
        """The LWA refresh-token grant: an access token and its lifetime in seconds."""
        response = self._lwa.post(
            "/auth/o2/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": self._secrets["refresh_token"],
                "client_id": self._secrets["client_id"],
                "client_secret": self._secrets["client_secret"],
            },
        )
        return _token(api_object(response, "LWA token answer"), "access_token", "expires_in")

    def _restricted_token(self) -> tuple[str, float]:
        """A Restricted Data Token for getOrders with the buyer's info and address."""
        answer = self._api.post(
            RDT_PATH,
            json={
                "restrictedResources": [
                    {
                        "method": "GET",
                        "path": ORDERS,
                        "dataElements": ["buyerInfo", "shippingAddress"],
                    }
                ]
            },
            headers={"x-amz-access-token": self._access.get()},
        )
        return _token(api_object(answer, "RDT answer"), "restrictedDataToken", "expiresIn")

    # --- OrderImporter -----------------------------------------------------------------------

    def fetch(self, cursor: str) -> ImportPage:
        """One page of getOrders after `cursor`, the Pending orders held before it rechecked
        at the start of each sweep; each taken order read with its items."""
        state = _read_cursor(cursor) if cursor else _Cursor(after=self._start)
        raws: list[Mapping[str, Any]] = []
        pending: list[str] = []
        if not state.next and state.pending:
            # AmazonOrderIds takes at most MAX_PENDING ids: every held order is asked for, in
            # as many calls as it takes, so none is ever dropped unseen.
            for start in range(0, len(state.pending), MAX_PENDING):
                batch = state.pending[start : start + MAX_PENDING]
                for raw in self._orders({"AmazonOrderIds": ",".join(batch)})[0]:
                    status = _status(raw)
                    if status in TAKEN:
                        raws.append(raw)
                    elif status == "Pending" and str(raw.get("AmazonOrderId")) in batch:
                        pending.append(str(raw.get("AmazonOrderId")))
        else:
            pending = list(state.pending)
        if state.next:
            found, token = self._orders({"NextToken": state.next})
        else:
            settled = _iso(self._now() - LISTING_DELAY)
            found, token = [], ""  # nothing has settled since the last sweep
            if utc_time(settled) > utc_time(state.after):
                found, token = self._orders(
                    {
                        "CreatedAfter": state.after,
                        "CreatedBefore": settled,
                        "FulfillmentChannels": "MFN",
                        "MaxResultsPerPage": self._page_size,
                    }
                )
        top, top_ids = state.top, list(state.top_ids)
        for index, raw in enumerate(found):
            if not isinstance(raw, Mapping):
                raise PeerUnavailable(f"getOrders: payload.Orders[{index}] is not an object")
            order_id = raw.get("AmazonOrderId")
            if not isinstance(order_id, str) or not order_id.strip():
                raise PeerUnavailable(f"getOrders: payload.Orders[{index}].AmazonOrderId")
            try:
                placed = utc_time(str(raw.get("PurchaseDate", "")))
            except (ValueError, OverflowError):
                raise InvalidInput.one(
                    f"payload.Orders[{index}].PurchaseDate", raw.get("PurchaseDate"), "not ISO 8601"
                ) from None
            if order_id in state.seen:
                continue
            stamp = _iso(placed)
            if not top or utc_time(stamp) > utc_time(top):
                top, top_ids = stamp, [order_id]
            elif stamp == top:
                top_ids.append(order_id)
            if _status(raw) in TAKEN:
                raws.append(raw)
            elif _status(raw) == "Pending" and order_id not in pending:
                pending.append(order_id)
        orders = tuple(self._read(raw) for raw in raws)
        if token:
            following = _Cursor(state.after, state.seen, token, top, tuple(top_ids), tuple(pending))
        elif top and top != state.after:
            following = _Cursor(top, tuple(top_ids), pending=tuple(pending))
        else:
            following = _Cursor(state.after, (*state.seen, *top_ids), pending=tuple(pending))
        return ImportPage(orders, following.dump(), more=bool(token))

    def _orders(self, query: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], str]:
        """One getOrders page (with the Restricted Data Token) and its NextToken."""
        response = self._api.get(
            ORDERS,
            params={"MarketplaceIds": self._marketplace, **query},
            headers={"x-amz-access-token": self._restricted.get()},
        )
        payload = obj(api_object(response, "getOrders answer").get("payload"))
        found = payload.get("Orders")
        if not isinstance(found, list):
            raise PeerUnavailable(f"{response.request.url}: getOrders answered no payload.Orders")
        return found, _next_token(payload, "getOrders")

    def _items(self, order_id: str) -> list[Mapping[str, Any]]:
        """Every item of the order, following getOrderItems' NextToken."""
        items: list[Mapping[str, Any]] = []
        token = ""
        while True:
            response = self._api.get(
                f"{ORDERS}/{order_id}/orderItems",
                params={"NextToken": token} if token else None,
                headers={"x-amz-access-token": self._access.get()},
            )
            payload = obj(api_object(response, "getOrderItems answer").get("payload"))
            page = payload.get("OrderItems")
            if not isinstance(page, list):
                raise PeerUnavailable(f"{response.request.url}: no payload.OrderItems")
            items += page
            token = _next_token(payload, "getOrderItems")
            if not token:
                return items

    def _read(self, raw: Mapping[str, Any]) -> ChannelOrder:
        order_id = str(raw.get("AmazonOrderId", ""))
        try:
            return read_order(raw, self._items(order_id))
        except InvalidInput as bad:
            raise bad.under(f"{order_id}.") from None

    # --- ShipmentConfirmer -------------------------------------------------------------------

    def confirm(self, parcel: ParcelShipped) -> None:
        """confirmShipment for the parcel as the package `package_reference_id(shipment_id)`:
        sent again, it edits that package at Amazon instead of adding one."""
        items = self._items(parcel.external_id)
        carrier = parcel.carrier.strip()
        code = CARRIER_CODES.get(carrier.lower(), "Other")
        package: dict[str, Any] = {
            "packageReferenceId": package_reference_id(parcel.shipment_id),
            "carrierCode": code,
            "trackingNumber": parcel.tracking_number,
            "shipDate": _iso(datetime.fromtimestamp(parcel.shipped_at, UTC)),
            "orderItems": _order_items(items, parcel),
        }
        if code == "Other":
            package["carrierName"] = carrier
        self._api.post(
            f"{ORDERS}/{parcel.external_id}/shipmentConfirmation",
            json={"marketplaceId": self._marketplace, "packageDetail": package},
            headers={"x-amz-access-token": self._access.get()},
        )


def _token(answer: Mapping[str, Any], key: str, lifetime: str) -> tuple[str, float]:
    """A token and its lifetime in seconds (an hour when not given) out of a token answer;
    `PeerUnavailable` naming the field when the answer holds none."""
    token, seconds = answer.get(key), answer.get(lifetime, 3600)
    if not isinstance(token, str) or not token:
        raise PeerUnavailable(f"token answer: no {key}")
    if not is_seconds(seconds):
        raise PeerUnavailable(f"token answer: {lifetime} {seconds!r}")
    return token, float(seconds)


def _status(raw: object) -> str:
    """An order's OrderStatus ("" when it is no string, or the order no object)."""
    status = raw.get("OrderStatus") if isinstance(raw, Mapping) else None
    return status if isinstance(status, str) else ""


def _listed(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _next_token(payload: Mapping[str, Any], operation: str) -> str:
    token = payload.get("NextToken") or ""
    if not isinstance(token, str):
        raise PeerUnavailable(f"{operation}: payload.NextToken {token!r}")
    return token


# --- reading an order --------------------------------------------------------------------------


def read_order(raw: Mapping[str, Any], items: list[Mapping[str, Any]]) -> ChannelOrder:
    """A getOrders `Order` (read with a Restricted Data Token) and its getOrderItems
    `OrderItems` as a ChannelOrder; `InvalidInput` naming every unreadable field
    (`OrderItems[i].` for the items)."""
    problems = ProblemCollector()
    order_id = raw.get("AmazonOrderId")
    if not isinstance(order_id, str) or not order_id.strip():
        problems.add("AmazonOrderId", order_id, "expected the Amazon order id")
    currency = obj(raw.get("OrderTotal")).get("CurrencyCode")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
        problems.add("OrderTotal.CurrencyCode", currency, "expected an ISO 4217 code")
        currency = "EUR"  # only to read the rest; the order is refused above
    lines = [line for i, item in enumerate(items) for line in _lines(item, i, currency, problems)]
    if not lines:
        problems.add("OrderItems", len(items), "no item with a quantity to ship")
    address = raw.get("ShippingAddress")
    if not isinstance(address, Mapping):
        problems.add("ShippingAddress", address, "missing (no Restricted Data Token?)")
        address = {}
    country = address.get("CountryCode")
    if address and (not isinstance(country, str) or len(country) != 2):
        problems.add("ShippingAddress.CountryCode", country, "expected ISO 3166-1 alpha-2")
    if address and not str(address.get("PostalCode") or "").strip():
        problems.add("ShippingAddress.PostalCode", address.get("PostalCode"), "missing")
    problems.raise_if_any()
    buyer = obj(raw.get("BuyerInfo"))
    tax_info = obj(buyer.get("BuyerTaxInfo"))
    vat = [
        str(c.get("Value", ""))
        for c in _listed(tax_info.get("TaxClassifications"))
        if isinstance(c, Mapping) and c.get("Name") == "VATNumber"
    ]
    street = (address.get(f"AddressLine{n}") for n in (1, 2, 3))
    return ChannelOrder(
        external_id=str(order_id),
        lines=tuple(lines),
        ship_to=ChannelAddress(
            name=str(address.get("Name") or ""),
            street=", ".join(str(part).strip() for part in street if part),
            postal_code=str(address.get("PostalCode") or "").strip(),
            city=str(address.get("City") or ""),
            country=str(country or "").upper(),
            company=str(address.get("CompanyName") or ""),
        ),
        currency=currency.upper(),
        email=str(buyer.get("BuyerEmail") or ""),
        customer_name=str(buyer.get("BuyerName") or ""),
        company=str(address.get("CompanyName") or tax_info.get("CompanyLegalName") or ""),
        tax_id=vat[0] if vat else "",
        b2b=raw.get("IsBusinessOrder") is True,
        paid=True,
    )


def _lines(item: Any, index: int, currency: str, problems: ProblemCollector) -> list[ChannelLine]:
    """One order item as one line, or two when its total does not divide by the quantity
    (units one minor unit apart, summing to the exact total)."""
    at = f"OrderItems[{index}]"
    if not isinstance(item, Mapping):
        problems.add(at, item, "an order item is a JSON object")
        return []
    quantity = item.get("QuantityOrdered")
    if not is_whole(quantity, minimum=0):
        problems.add(f"{at}.QuantityOrdered", quantity, "expected a whole number of units")
        return []
    sku = str(item.get("SellerSKU") or item.get("ASIN") or "").strip()
    if not sku:
        problems.add(f"{at}.SellerSKU", item.get("SellerSKU"), "an item needs a SellerSKU or ASIN")
    try:
        row = _money(item, "ItemPrice", currency, at) - _money(
            item, "PromotionDiscount", currency, at
        )
    except InvalidInput as bad:
        problems.extend(bad.problems)
        return []
    if quantity == 0 or not sku:
        return []
    name = str(item.get("Title") or "")
    unit, odd = divmod(max(row, 0), quantity)
    whole = [ChannelLine(sku, quantity - odd, unit, name)]  # odd < quantity: never empty
    return whole + ([ChannelLine(sku, odd, unit + 1, name)] if odd else [])


def _money(item: Mapping[str, Any], field: str, currency: str, at: str) -> int:
    """`item[field].Amount` in minor units (0 when the item has no such amount); its
    CurrencyCode must be the order's."""
    money = item.get(field)
    if money is None:
        return 0
    if not isinstance(money, Mapping):
        raise InvalidInput.one(f"{at}.{field}", money, "expected {CurrencyCode, Amount}")
    if money.get("CurrencyCode", currency) != currency:
        raise InvalidInput.one(
            f"{at}.{field}.CurrencyCode", money.get("CurrencyCode"), f"the order is in {currency}"
        )
    amount: Any = money.get("Amount")
    return minor_units(amount, currency, f"{at}.{field}.Amount")


# --- confirming a parcel -----------------------------------------------------------------------


def package_reference_id(shipment_id: str) -> str:
    """A positive number standing for our shipment id within its order (Amazon accepts only
    positive numeric packageReferenceIds): 48 bits of its SHA-256, so it is the same on every
    retry and two parcels of one order practically never share it."""
    return str(int(hashlib.sha256(shipment_id.encode()).hexdigest()[:12], 16) + 1)


def _order_items(items: list[Mapping[str, Any]], parcel: ParcelShipped) -> list[dict[str, Any]]:
    """The parcel's lines as `{orderItemId, quantity}`, a sku's units spread over its items by
    their ordered quantity (not by what is left: a re-sent confirmation must be the same)."""
    rows: dict[str, list[tuple[str, int]]] = {}
    for item in items:
        sku = str(item.get("SellerSKU") or item.get("ASIN") or "")
        rows.setdefault(sku, []).append(
            (str(item.get("OrderItemId")), int(item.get("QuantityOrdered") or 0))
        )
    taken: dict[str, int] = {}
    problems = ProblemCollector()
    for index, line in enumerate(parcel.lines):
        wanted = line.quantity
        for item_id, ordered in rows.get(line.sku, []):
            take = min(wanted, ordered - taken.get(item_id, 0))
            if take > 0:
                taken[item_id] = taken.get(item_id, 0) + take
                wanted -= take
        if wanted > 0:
            problems.add(
                f"lines[{index}]",
                f"{line.sku} x {line.quantity}",
                f"more than Amazon order {parcel.external_id} has of that SellerSKU",
            )
    problems.raise_if_any()
    return [{"orderItemId": item_id, "quantity": qty} for item_id, qty in taken.items()]


# --- the cursor --------------------------------------------------------------------------------


class _Cursor:
    """Where a poll stands (see the module docstring), written as compact JSON."""

    def __init__(
        self,
        after: str,
        seen: tuple[str, ...] = (),
        next: str = "",
        top: str = "",
        top_ids: tuple[str, ...] = (),
        pending: tuple[str, ...] = (),
    ) -> None:
        self.after, self.seen, self.next = after, tuple(seen), next
        self.top, self.top_ids, self.pending = top, tuple(top_ids), tuple(pending)

    def dump(self) -> str:
        fields = {
            "after": self.after,
            "seen": list(self.seen),
            "next": self.next,
            "top": self.top,
            "top_ids": list(self.top_ids),
            "pending": list(self.pending),
        }
        return json.dumps({k: v for k, v in fields.items() if v}, separators=(",", ":"))


def _read_cursor(cursor: str) -> _Cursor:
    """The cursor `dump` wrote; `InvalidInput` for anything else."""
    try:
        data = json.loads(cursor)
        utc_time(data["after"])
        lists = {k: tuple(str(v) for v in data.get(k, [])) for k in ("seen", "top_ids", "pending")}
        return _Cursor(
            data["after"],
            lists["seen"],
            str(data.get("next", "")),
            str(data.get("top", "")),
            lists["top_ids"],
            lists["pending"],
        )
    except (ValueError, TypeError, KeyError, AttributeError):
        raise InvalidInput.one("cursor", cursor, "not a cursor this adapter wrote") from None


def _iso(moment: datetime) -> str:
    """The ISO 8601 form Amazon reads: UTC with a Z, milliseconds when there are any."""
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace(".000+00:00", "Z").replace("+00:00", "Z")
