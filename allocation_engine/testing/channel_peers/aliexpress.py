"""A local AliExpress Open Platform: the business gateway `POST /sync` with the three order
APIs our adapter calls, checking every request's signature the way the platform documents it.

Every call must carry `method`, `app_key`, `access_token`, `timestamp` (ms, within 7200 s),
`sign_method=sha256` and `sign` = upper-case hex HMAC-SHA256 (app secret) over the parameters
but `sign`, sorted by name, concatenated name+value. Refusals answer the platform's error body
`{"type", "code", "message", "request_id"}`: `MissingParameter`, `IncompleteSignature` (a wrong
sign or app key), `IllegalAccessToken`, `InvalidTimestamp`, `InvalidApiPath` (an unknown
method), and `ApiCallLimit` for the calls `limit(n)` marks. The platform's HTTP status on such
refusals is not documented; this peer answers them 200 with the error body, as the gateway's
SDK reads them.

- `aliexpress.solution.order.get` (`param0` JSON): `create_date_start`/`create_date_end` (US
  Pacific), `order_status` / `order_status_list`, `page_size` (1..50), `current_page`; newest
  first; `result.target_list.order_dto[]` with `total_count`, `total_page`.
- `aliexpress.solution.order.info.get` (`param1` JSON `order_id`, `ext_info_bit_flag`): the
  order's `GlobalAeopTpOrderDetailDto`, its logistics (4) and buyer (8) parts only when asked.
- `aliexpress.solution.order.fulfill`: records `logistics_no` on the order's
  `logistic_info_list` and moves it to WAIT_BUYER_ACCEPT_GOODS ("all") or
  SELLER_PART_SEND_GOODS ("part"); a logistics_no the order already has is refused with
  `result_success: false` (the platform's exact answer to a repeat is not documented).

The sample is order.info.get's response for one order; `new_order` lists a copy of it.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import secrets
import threading
import time
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from allocation_engine.testing.http_peer import Answer, HttpPeer, PeerRequest

INFO = "aliexpress_solution_order_info_get_response"
PACIFIC = ZoneInfo("America/Los_Angeles")
DEMO_SKUS = ("SKU-0021", "SKU-0022", "SKU-0023", "SKU-0024", "SKU-0025", "SKU-0026")
SYSTEM = ("method", "app_key", "access_token", "timestamp", "sign_method", "sign")


def children(order: dict[str, Any]) -> list[dict[str, Any]]:
    return list(order["child_order_list"]["global_aeop_tp_child_order_dto"])


def child_sku(child: dict[str, Any]) -> str:
    return str(child.get("sku_code") or child["product_id"])


class AliExpressPeer(HttpPeer):
    kind = "aliexpress"

    def __init__(self, sample: dict[str, Any]) -> None:
        super().__init__()
        self.sample = sample[INFO]["result"]["data"]
        self.app_key = "50" + str(secrets.randbelow(10**6)).zfill(6)
        self.app_secret = secrets.token_hex(16)
        self.access_token = "50000" + secrets.token_hex(20)
        self.orders: dict[str, dict[str, Any]] = {}
        self.bodies: dict[str, list[dict[str, str]]] = {}
        self._limited = 0
        self._state = threading.Lock()
        self._methods = {
            "aliexpress.solution.order.get": self._list,
            "aliexpress.solution.order.info.get": self._info,
            "aliexpress.solution.order.fulfill": self._fulfill,
        }
        self.route("POST", "/sync", self._gateway)

    # --- PlatformPeer --------------------------------------------------------------------------

    def secrets(self) -> dict[str, str]:
        return {
            "app_key": self.app_key,
            "app_secret": self.app_secret,
            "access_token": self.access_token,
        }

    def options(self) -> dict[str, Any]:
        return {"created_after": "2026-11-01T00:00:00Z", "carrier_services": {"DHL": "DHL"}}

    def skus(self) -> dict[str, str]:
        return dict(zip(map(child_sku, children(self.sample)), DEMO_SKUS, strict=False))

    def new_order(self, edge_url: str, channel: str) -> str:
        """Lists a copy of the sample (a fresh order id after the first) for the next poll."""
        order = copy.deepcopy(self.sample)
        with self._state:
            while str(order["id"]) in self.orders:
                order["id"] += 1
        self.add_order(order)
        return str(order["id"])

    def confirmations(self, external_id: str) -> list[dict[str, Any]]:
        with self._state:
            bodies = list(self.bodies.get(external_id, []))
        return [
            {
                "carrier": body["service_name"],
                "tracking_number": body["logistics_no"],
                "lines": {
                    sku: int(quantity)
                    for sku, _, quantity in (
                        part.strip().rpartition(" x")
                        for part in body.get("description", "").split(";")
                    )
                    if sku
                },
                "raw": body,
            }
            for body in bodies
        ]

    # --- test helpers --------------------------------------------------------------------------

    def add_order(self, order: dict[str, Any]) -> None:
        """Lists `order` (a GlobalAeopTpOrderDetailDto) for order.get and order.info.get."""
        with self._state:
            self.orders[str(order["id"])] = order

    def limit(self, calls: int) -> None:
        """The next `calls` calls answer ApiCallLimit, the platform's throttle."""
        with self._state:
            self._limited = calls

    # --- the gateway ---------------------------------------------------------------------------

    @staticmethod
    def _refuse(code: str, message: str, kind: str = "ISV") -> Answer:
        return 200, {
            "type": kind,
            "code": code,
            "message": message,
            "request_id": secrets.token_hex(8),
        }

    def _gateway(self, request: PeerRequest) -> Answer:
        merged = {**request.query, **parse_qs(request.body.decode(), keep_blank_values=True)}
        params = {k: v[0] for k, v in merged.items()}
        for name in SYSTEM:
            if not params.get(name):
                return self._refuse(
                    "MissingParameter",
                    f'The input parameter "{name}" that is mandatory for processing this '
                    "request is not supplied.",
                )
        expected = (
            hmac.new(
                self.app_secret.encode(),
                "".join(f"{k}{params[k]}" for k in sorted(params) if k != "sign").encode(),
                hashlib.sha256,
            )
            .hexdigest()
            .upper()
        )
        if (
            params["app_key"] != self.app_key
            or params["sign_method"] != "sha256"
            or not hmac.compare_digest(params["sign"], expected)
        ):
            return self._refuse(
                "IncompleteSignature",
                "The request signature does not conform to platform standards",
            )
        if params["access_token"] != self.access_token:
            return self._refuse(
                "IllegalAccessToken", "The specified access token is invalid or expired"
            )
        try:
            skew = abs(time.time() - int(params["timestamp"]) / 1000)
        except ValueError:
            skew = float("inf")
        if skew > 7200:
            return self._refuse("InvalidTimestamp", "The specified timestamp is invalid")
        handler = self._methods.get(params["method"])
        if handler is None:
            return self._refuse("InvalidApiPath", "The specified API path is invalid")
        with self._state:
            if self._limited > 0:
                self._limited -= 1
                return self._refuse("ApiCallLimit", "The request has exceeded api limit", "ISP")
        result = handler({k: v for k, v in params.items() if k not in SYSTEM})
        name = params["method"].replace(".", "_") + "_response"
        return 200, {name: {"result": result, "request_id": secrets.token_hex(8)}}

    # --- the APIs ------------------------------------------------------------------------------

    def _list(self, params: dict[str, str]) -> dict[str, Any]:
        query = json.loads(params.get("param0") or "{}")
        size, page = int(query.get("page_size", 0)), int(query.get("current_page", 0))
        if not 1 <= size <= 50 or page < 1:
            return {
                "success": False,
                "error_code": "PARAM_ERROR",
                "error_message": "page_size 1..50, current_page >= 1",
            }
        statuses = set(query.get("order_status_list") or []) | (
            {query["order_status"]} if query.get("order_status") else set()
        )
        start, end = query.get("create_date_start", ""), query.get("create_date_end", "9999")
        with self._state:
            matching = sorted(
                (
                    o
                    for o in self.orders.values()
                    if start <= o["gmt_create"] <= end
                    and (not statuses or o["order_status"] in statuses)
                ),
                key=lambda o: (o["gmt_create"], o["id"]),
                reverse=True,
            )
            chosen = matching[(page - 1) * size : page * size]
            entries = [self._entry(o) for o in chosen]
        return {
            "success": True,
            "total_count": len(matching),
            "total_page": -(-len(matching) // size),
            "current_page": page,
            "page_size": size,
            "target_list": {"order_dto": entries},
        }

    @staticmethod
    def _entry(order: dict[str, Any]) -> dict[str, Any]:
        """The order as order.get lists it (an OrderDto)."""
        return {
            "order_id": order["id"],
            "gmt_create": order["gmt_create"],
            "gmt_pay_time": order.get("gmt_pay_success"),
            "order_status": order["order_status"],
            "fund_status": order.get("fund_status"),
            "logistics_status": order.get("logistics_status"),
            "buyer_login_id": order.get("buyerloginid"),
            "buyer_signer_fullname": order.get("buyer_signer_fullname"),
            "pay_amount": {
                "amount": order["order_amount"]["amount"],
                "currency_code": order["order_amount"]["currency_code"],
            },
            "product_list": {
                "order_product_dto": [
                    {
                        "order_id": order["id"],
                        "child_id": c["id"],
                        "product_id": c["product_id"],
                        "product_name": c["product_name"],
                        "product_count": c["product_count"],
                        "sku_code": c.get("sku_code", ""),
                        "product_unit_price": {
                            "amount": c["product_price"]["amount"],
                            "currency_code": c["product_price"]["currency_code"],
                        },
                    }
                    for c in children(order)
                ]
            },
        }

    def _info(self, params: dict[str, str]) -> dict[str, Any]:
        query = json.loads(params.get("param1") or "{}")
        flags = int(query.get("ext_info_bit_flag", 0b11111))
        with self._state:
            order = copy.deepcopy(self.orders.get(str(query.get("order_id"))))
        if order is None:
            return {
                "success": False,
                "error_code": "ORDER_NOT_FOUND",
                "error_message": "order not found",
            }
        if not flags & 0b00100:
            order.pop("logistic_info_list", None)
        if not flags & 0b01000:
            order.pop("buyer_info", None)
        return {"success": True, "data": order, "error_code": "", "error_message": ""}

    def _fulfill(self, params: dict[str, str]) -> dict[str, Any]:
        missing = [
            k for k in ("service_name", "out_ref", "send_type", "logistics_no") if not params.get(k)
        ]
        if missing or params["send_type"] not in ("all", "part"):
            return {"result_success": False, "error_message": f"bad parameters {missing}"}
        if params["service_name"] == "OTHER" and not params.get("tracking_website"):
            return {"result_success": False, "error_message": "tracking_website required for OTHER"}
        with self._state:
            order = self.orders.get(params["out_ref"])
            if order is None or order["order_status"] not in (
                "WAIT_SELLER_SEND_GOODS",
                "SELLER_PART_SEND_GOODS",
            ):
                return {"result_success": False, "error_message": "order cannot be fulfilled"}
            infos = order.setdefault("logistic_info_list", {}).setdefault(
                "global_aeop_tp_logistic_info_dto", []
            )
            if any(i["logistics_no"] == params["logistics_no"] for i in infos):
                return {"result_success": False, "error_message": "logistics_no already used"}
            infos.append(
                {
                    "logistics_no": params["logistics_no"],
                    "logistics_type_code": params["service_name"],
                    "logistics_service_name": params["service_name"],
                    "gmt_send": datetime.now(PACIFIC).strftime("%Y-%m-%d %H:%M:%S"),
                    "have_tracking_info": False,
                    "receive_status": "default",
                }
            )
            everything = params["send_type"] == "all"
            order["order_status"] = (
                "WAIT_BUYER_ACCEPT_GOODS" if everything else "SELLER_PART_SEND_GOODS"
            )
            order["logistics_status"] = (
                "SELLER_SEND_GOODS" if everything else "SELLER_SEND_PART_GOODS"
            )
            self.bodies.setdefault(params["out_ref"], []).append(params)
        return {"result_success": True}
