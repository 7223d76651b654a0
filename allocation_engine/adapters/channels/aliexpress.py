"""AliExpress, through the AliExpress Open Platform's business gateway (`POST /sync`, the
api-sg.aliexpress.com endpoint of the current platform, "solution" order APIs).

Auth and signing: every call is one form-encoded `POST {base_url}/sync` carrying the system
parameters `method` (the API name), `app_key`, `access_token` (the seller's authorization),
`timestamp` (milliseconds since the epoch; the platform accepts 7200 s of skew), `sign_method=
sha256`, `format=json`, the API's own parameters, and `sign`: HMAC-SHA256 keyed with the app
secret over every parameter but `sign`, sorted by name in ASCII order and concatenated as
name1value1name2value2..., as upper-case hex. (System interfaces on `/rest`, such as
`/auth/token/create`, put the API path in front of that string; `sign` supports it, but this
adapter calls business interfaces only, whose API name travels as `method` instead.) The
seller's access token is read as a credential; it is renewed outside this adapter. A refusal
comes back as `{"type", "code", "message", "request_id"}` (`IncompleteSignature` for a bad
sign, `IllegalAccessToken`, ...): ISV errors raise PeerRefused; `ApiCallLimit` and the
platform's own ISP/SYSTEM errors are retried with the HTTP client's backoff policy and raise
PeerUnavailable when they last, as a 429 or 5xx does in the HTTP client.

Inbound (polled): `aliexpress.solution.order.get` with `param0` = JSON `{"create_date_start":
<created_after in US Pacific time, "YYYY-MM-DD HH:MM:SS">, "order_status_list":
["WAIT_SELLER_SEND_GOODS"], "page_size", "current_page"}` lists the orders awaiting shipment
(`result.target_list.order_dto[]`, `total_page`); each order not imported before is read with
`aliexpress.solution.order.info.get` (`param1` = `{"order_id", "ext_info_bit_flag": 12}`,
logistics and buyer details) for its address and child orders. The cursor is the open-queue
cursor eBay's adapter uses too (`queue_cursor.QueueCursor`): orders reach WAIT_SELLER_SEND_GOODS
only after payment and the 24 h RISK_CONTROL hold, long after orders created later, so a
creation-time cursor would pass them; the queue cursor imports each once, however many share a
timestamp.

Mapped: the order `id` -> external_id (what order.info.get and fulfill take back); each
`child_order_list.global_aeop_tp_child_order_dto[]` -> a line with `sku_code` (else the
`product_id`), `product_count`, the unit price `product_price.amount` less the child order's
`child_order_discount_info.amount` spread over its units, in minor units of
`product_price.currency_code`, and `product_name`; `receipt_address` -> ship-to
(`contact_person`, `detail_address` (else `address`) + `address2`, `zip`, `city`, `country`);
`buyer_info.login_id` (else `buyerloginid`) -> customer id, `buyer_info.first_name/last_name`
-> customer name; paid always (AliExpress collects the money). Not mapped: e-mail (AliExpress
passes none), company, tax id and b2b (the order API documents no business buyer; `cpf_number`
is a Brazilian personal id), coordinates, shipping cost, the buyer's memo.

Outbound: `aliexpress.solution.order.fulfill` with `out_ref` (the order id), `logistics_no`
(the tracking number), `service_name` (`options.carrier_services[carrier]`, else "OTHER" with
`options.tracking_website`), `send_type` ("all" when the parcel holds every unit of the order,
else "part") and `description` listing the parcel's lines as "SKU x2; SKU x1" (the fulfill
API itself takes no lines; its remarks field is English-only and 512 characters long).
AliExpress has no idempotency key: the confirmer first reads the order's
`logistic_info_list` and sends nothing when the tracking number is there; a refused fulfill is
success when a re-read then shows it (the first try went through). The fulfill is sent once,
retried neither by the HTTP client nor on a SYSTEM/ISP error: PeerUnavailable, and the outbox's
next attempt reads the order first.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from allocation_engine.adapters.channels import Connection
from allocation_engine.adapters.channels.money import unit_price
from allocation_engine.adapters.channels.options import OptionReader
from allocation_engine.adapters.channels.payload import (
    Reader,
    api_object,
    full_name,
    is_whole,
    obj,
)
from allocation_engine.adapters.channels.queue_cursor import QueueCursor
from allocation_engine.adapters.http_client import HttpClient, RetryPolicy
from allocation_engine.errors import (
    InvalidInput,
    PeerRefused,
    PeerUnavailable,
    ProblemCollector,
)
from allocation_engine.ports.channels import (
    ChannelAddress,
    ChannelLine,
    ChannelOrder,
    ChannelSettings,
    ImportPage,
    ParcelShipped,
)

CREDENTIALS: tuple[str, ...] = ("app_key", "app_secret", "access_token")
OPTIONS: dict[str, bool] = {
    "created_after": True,
    "page_size": False,
    "carrier_services": False,
    "tracking_website": False,
}

GATEWAY = "/sync"
PACIFIC = ZoneInfo("America/Los_Angeles")  # AliExpress order times are US Pacific
READY = "WAIT_SELLER_SEND_GOODS"
DETAILS = 0b01100  # ext_info_bit_flag: logistics (3rd bit) and buyer (4th bit) information
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 50
RETRIED_TYPES = frozenset({"ISP", "SYSTEM"})
DESCRIPTION_LIMIT = 512


def sign(secret: str, params: Mapping[str, str], api_path: str = "") -> str:
    """The Open Platform signature: upper-case hex HMAC-SHA256 keyed with the app secret over
    `api_path` (system interfaces only) followed by every parameter but `sign`, sorted by name,
    as name+value."""
    text = api_path + "".join(f"{k}{params[k]}" for k in sorted(params) if k != "sign")
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest().upper()


def listed(value: object, wrapper: str) -> list[Any]:
    """A list as the gateway serializes it: `{"<item type>": [...]}`, or a bare list."""
    if isinstance(value, Mapping):
        value = value.get(wrapper)
    return list(value) if isinstance(value, list) else []


def pacific(when: datetime) -> str:
    """A time as AliExpress' order APIs take and give it: US Pacific, to the second."""
    return when.astimezone(PACIFIC).strftime("%Y-%m-%d %H:%M:%S")


def read_order(detail: Mapping[str, Any]) -> ChannelOrder:
    """One `GlobalAeopTpOrderDetailDto` (order.info.get's `result.data`) as a ChannelOrder;
    `InvalidInput` naming every unreadable field."""
    read = Reader()
    order_id = read.text(detail, "id", "data")
    children = listed(detail.get("child_order_list"), "global_aeop_tp_child_order_dto")
    if not children:
        read.problems.add("data.child_order_list", detail.get("child_order_list"), "no lines")
    lines, currencies = [], set()
    for n, raw in enumerate(children):
        path = f"data.child_order_list[{n}]"
        child = read.obj(raw, path)
        sku = str(child.get("sku_code") or "").strip() or read.text(child, "product_id", path)
        quantity = read.quantity(child, "product_count", path)
        price = read.obj(child.get("product_price"), f"{path}.product_price")
        currency = read.text(price, "currency_code", f"{path}.product_price").upper()
        currencies.add(currency)
        unit = read.money(price.get("amount"), currency, f"{path}.product_price.amount")
        discount_path = f"{path}.child_order_discount_info"
        discount = read.obj(child.get("child_order_discount_info"), discount_path, False)
        off = 0
        if discount.get("amount") is not None:
            off = read.money(discount["amount"], currency, f"{discount_path}.amount")
        total = unit * quantity - off
        lines.append(
            ChannelLine(
                sku, quantity, unit_price(total, quantity), str(child.get("product_name") or "")
            )
        )
    if len(currencies) > 1:
        read.problems.add("data.child_order_list", sorted(currencies), "mixed currencies")
    address = read.obj(detail.get("receipt_address"), "data.receipt_address")
    street = str(address.get("detail_address") or address.get("address") or "").strip()
    if not street:
        read.problems.add("data.receipt_address.detail_address", None, "no street")
    extra = str(address.get("address2") or "").strip()
    buyer = read.obj(detail.get("buyer_info"), "data.buyer_info", required=False)
    customer = str(buyer.get("login_id") or detail.get("buyerloginid") or "")
    result = ChannelOrder(
        external_id=order_id,
        lines=tuple(lines),
        ship_to=ChannelAddress(
            name=str(address.get("contact_person") or "").strip(),
            street=f"{street} {extra}".strip(),
            postal_code=read.text(address, "zip", "data.receipt_address"),
            city=read.text(address, "city", "data.receipt_address"),
            country=read.country(address, "country", "data.receipt_address"),
        ),
        currency=next(iter(currencies), ""),
        customer_id=customer,
        customer_name=full_name(buyer, "first_name", "last_name"),
        paid=True,
    )
    read.done()
    return result


def parcel_lines(parcel: ParcelShipped) -> str:
    """The parcel's lines for the fulfill remarks: "SKU x2; SKU x1" (cut to 512 characters)."""
    text = "; ".join(f"{line.sku} x{line.quantity}" for line in parcel.lines)
    return text[:DESCRIPTION_LIMIT]


def send_type(detail: Mapping[str, Any], parcel: ParcelShipped) -> str:
    """ "all" when the parcel holds every unit of the order, else "part"; `InvalidInput` for a
    parcel sku that is on no child order (or more units than ordered)."""
    ordered: dict[str, int] = {}
    for child in listed(detail.get("child_order_list"), "global_aeop_tp_child_order_dto"):
        child = obj(child)
        sku = str(child.get("sku_code") or "").strip() or str(child.get("product_id"))
        count = child.get("product_count")
        ordered[sku] = ordered.get(sku, 0) + (count if is_whole(count, 0) else 0)
    problems = ProblemCollector()
    shipped: dict[str, int] = {}
    for n, line in enumerate(parcel.lines):
        shipped[line.sku] = shipped.get(line.sku, 0) + line.quantity
        if shipped[line.sku] > ordered.get(line.sku, 0):
            problems.add(f"parcel.lines[{n}]", line.sku, "more units than the AliExpress order")
    problems.raise_if_any()
    return "all" if shipped == ordered else "part"


@dataclass
class AliExpressChannel:
    """One AliExpress seller: polled for orders, told of shipments."""

    settings: ChannelSettings
    http: HttpClient
    secrets: Mapping[str, str]
    created_after: str
    page_size: int
    carrier_services: Mapping[str, str]
    tracking_website: str
    once: HttpClient | None = None
    """The client a call the platform does not deduplicate (fulfill) goes through, never
    retried; `http` when not given."""
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time

    # --- the gateway ------------------------------------------------------------------------

    def call(
        self, method: str, business: Mapping[str, str], *, once: bool = False
    ) -> Mapping[str, Any]:
        """The `<method>_response` of one signed business call; platform throttling and
        platform-side errors are retried with the client's backoff, unless `once` (a call
        the platform does not deduplicate: sent once, PeerUnavailable when unanswered)."""
        http = (self.once or self.http) if once else self.http
        policy = self.http.retry
        attempts = 1 if once else policy.attempts
        why = ""
        for attempt in range(attempts):
            params = {
                "method": method,
                "app_key": self.secrets["app_key"],
                "access_token": self.secrets["access_token"],
                "timestamp": str(int(self.clock() * 1000)),
                "sign_method": "sha256",
                "format": "json",
                **business,
            }
            params["sign"] = sign(self.secrets["app_secret"], params)
            response = http.post(GATEWAY, data=params)
            body = api_object(response, f"{method} answer")
            error = obj(body.get("error_response", body))
            code = str(error.get("code") or "0")
            if code == "0":
                answer = body.get(method.replace(".", "_") + "_response")
                if not isinstance(answer, Mapping):
                    raise PeerRefused(
                        response.status_code,
                        self.http.base_url + GATEWAY,
                        f"{method}: no {method} response in {body!r}",
                    )
                return answer
            why = f"{code} ({error.get('type')}) on {method}: {error.get('message')}"
            if code != "ApiCallLimit" and error.get("type") not in RETRIED_TYPES:
                raise PeerRefused(response.status_code, self.http.base_url + GATEWAY, why)
            if attempt + 1 < attempts:
                self.sleep(min(policy.maximum, policy.initial * 2**attempt))
        raise PeerUnavailable(f"{self.http.base_url}{GATEWAY} {why} after {attempts} attempts")

    def detail(self, order_id: str) -> Mapping[str, Any]:
        """order.info.get's `result.data` for one order."""
        if not order_id.isdigit():
            raise InvalidInput.one("external_id", order_id, "AliExpress order ids are numbers")
        query = json.dumps({"order_id": int(order_id), "ext_info_bit_flag": DETAILS})
        answer = self.call("aliexpress.solution.order.info.get", {"param1": query})
        result = obj(answer.get("result"))
        data = result.get("data")
        if not isinstance(data, Mapping):
            raise PeerRefused(
                200,
                self.http.base_url + GATEWAY,
                f"order {order_id}: {result.get('error_code')} {result.get('error_message')}",
            )
        return data

    # --- importer ---------------------------------------------------------------------------

    def fetch(self, cursor: str) -> ImportPage:
        """One page of the orders awaiting shipment after `cursor`."""
        state = QueueCursor.decode(cursor)
        query = {
            "create_date_start": self.created_after,
            "order_status_list": [READY],
            "page_size": self.page_size,
            "current_page": state.page + 1,
        }
        answer = self.call("aliexpress.solution.order.get", {"param0": json.dumps(query)})
        result = obj(answer.get("result"))
        entries = listed(result.get("target_list"), "order_dto")
        ids, ready = [], set()
        for n, entry in enumerate(entries):
            order_id = str(entry.get("order_id") or "") if isinstance(entry, Mapping) else ""
            if not order_id.isdigit():
                raise InvalidInput.one(
                    f"result.target_list[{n}].order_id", entry, "expected a numeric order id"
                )
            ids.append(order_id)
            if entry.get("order_status") == READY:
                ready.add(order_id)
        pages = result.get("total_page") or 0
        if not is_whole(pages, 0):
            raise PeerUnavailable(f"{self.http.base_url}{GATEWAY}: total_page {pages!r}")
        last = not entries or state.page + 1 >= pages
        return state.import_page(
            ids, ready, lambda order_id: read_order(self.detail(order_id)), last
        )

    # --- confirmer --------------------------------------------------------------------------

    @staticmethod
    def _tracked(detail: Mapping[str, Any]) -> Iterable[str]:
        for info in listed(detail.get("logistic_info_list"), "global_aeop_tp_logistic_info_dto"):
            if isinstance(info, Mapping):
                yield str(info.get("logistics_no") or "")

    def confirm(self, parcel: ParcelShipped) -> None:
        """Fulfills the order with the parcel's tracking number unless AliExpress has it."""
        tracking = parcel.tracking_number.replace(" ", "")
        detail = self.detail(parcel.external_id)
        if tracking in self._tracked(detail):
            return
        service = self.carrier_services.get(parcel.carrier, "OTHER")
        business = {
            "out_ref": parcel.external_id,
            "logistics_no": tracking,
            "service_name": service,
            "send_type": send_type(detail, parcel),
            "description": parcel_lines(parcel),
        }
        if service == "OTHER":
            if not self.tracking_website:
                raise InvalidInput.one(
                    "options.tracking_website",
                    "",
                    f"carrier {parcel.carrier!r} has no AliExpress service: "
                    "an OTHER service needs the tracking website",
                )
            business["tracking_website"] = self.tracking_website
        try:
            # Sent once: a fulfill the platform made but answered with an error for would,
            # retried, be sent twice; the outbox tries again and the tracking check runs first.
            answer = self.call("aliexpress.solution.order.fulfill", business, once=True)
            result = obj(answer.get("result"))
            if result.get("result_success") is True:
                return
            refusal = PeerRefused(200, self.http.base_url + GATEWAY, f"fulfill: {result!r}")
        except PeerRefused as refused:
            refusal = refused
        if tracking not in self._tracked(self.detail(parcel.external_id)):
            raise refusal


def connect(
    settings: ChannelSettings, secrets: Mapping[str, str], *, retry: RetryPolicy | None = None
) -> Connection:
    """The AliExpress channel: an importer and a confirmer over one HTTP client."""
    if not settings.base_url:
        raise InvalidInput.one(f"{settings.name}.base_url", "", "AliExpress needs the gateway URL")
    read = OptionReader(settings, secrets)
    channel_secrets = read.secrets(CREDENTIALS, under=f"{settings.name}.")
    since = read.time("created_after")
    page_size = read.count("page_size", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    carrier_services = read.table("carrier_services")
    read.done()
    channel = AliExpressChannel(
        settings=settings,
        http=HttpClient(settings.base_url, headers={"Accept": "application/json"}, retry=retry),
        once=HttpClient(
            settings.base_url, headers={"Accept": "application/json"}, retry=RetryPolicy(attempts=1)
        ),
        secrets=channel_secrets,
        created_after=pacific(since),
        page_size=page_size,
        carrier_services=carrier_services,
        tracking_website=read.text("tracking_website"),
    )
    return Connection(importer=channel, confirmer=channel)
