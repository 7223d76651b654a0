"""The HTTP edge beside gRPC, over real HTTP on a free port: REST bodies are the gRPC request
messages in the protobuf JSON mapping and reach the same servicers; bad input is named; the
same tokens, scopes, rate limits, audit trail and TLS certificate guard it; the OpenAPI document
is published; POS sales take a store's stock down once; metrics cover the edge."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from allocation_engine.adapters.clock import SystemClock
from allocation_engine.adapters.redis.audit import RedisAudit
from allocation_engine.adapters.redis.tokens import RedisCallers
from allocation_engine.api.http.app import HttpDeps, build_app
from allocation_engine.api.http.gate import HttpGate
from allocation_engine.api.http.server import HttpServer
from allocation_engine.app.demo import DEMO_SHOP, DEMO_SHOP_SECRETS, demo_shop_order
from allocation_engine.app.orders import OrderConfig
from allocation_engine.app.serve import AccessConfig, Running, ServeConfig, TelemetryConfig, start
from allocation_engine.service.access import register
from allocation_engine.testing.channel_peers.shopify import ShopifyPeer
from tests.support.certs import Authority

EXAMPLES = Path(__file__).parent.parent.parent / "examples"


def b2c_order(external_id: str = "web-1001") -> dict[str, Any]:
    order: dict[str, Any] = json.loads((EXAMPLES / "order-b2c.json").read_text())
    order["external_order_id"] = external_id
    order["channel"] = "app-de"
    return order


def channels_file(tmp_path: Path) -> str:
    path = tmp_path / "channels.toml"
    path.write_text(
        '[[channel]]\nname = "app-de"\nkind = "app"\nworkflow = "b2c-prepaid"\n\n'
        '[[channel]]\nname = "till-berlin"\nkind = "pos"\n'
        '[channel.skus]\n"4006381333931" = "SKU-0151"\n'
    )
    return str(path)


def serve(tmp_path: Path, **changes: Any) -> Running:
    orders = OrderConfig(
        redis_url=changes.get("redis_url"),
        channels=channels_file(tmp_path),
        mail_dir=str(tmp_path / "mail"),
        wms_dir=str(tmp_path / "wms"),
        demo=True,
    )
    return start(ServeConfig(port=0, http_port=0, demo=True, orders=orders, **changes))


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[Running]:
    running = serve(tmp_path, telemetry=TelemetryConfig(metrics_port=0))
    yield running
    running.stop(1.0)


def url(running: Running, path: str) -> str:
    assert running.http is not None
    return running.http.url + path


def test_rest_places_reads_and_ships_an_order_like_grpc(edge: Running) -> None:
    """Given the HTTP edge, when a PlaceOrderRequest is POSTed as protobuf JSON, then the order
    is placed (created) and the same request again answers the first order (not created);
    GET answers it with its timeline; a parcel recorded as shipped moves it on."""
    first = httpx.post(url(edge, "/v1/orders"), json=b2c_order())
    assert first.status_code == 200, first.text
    placed = first.json()
    assert placed["created"] is True
    order_id = placed["order"]["id"]
    again = httpx.post(url(edge, "/v1/orders"), json=b2c_order()).json()
    assert (again["created"], again["order"]["id"]) == (False, order_id)
    shown = httpx.get(url(edge, f"/v1/orders/{order_id}")).json()
    assert shown["order"]["channel"] == "app-de"
    assert shown["order"]["workflow"] == "b2c-prepaid"
    assert shown["timeline"][0]["type"] == "order.placed"


def test_bad_input_is_named_and_changes_nothing(edge: Running) -> None:
    """Given the HTTP edge, when requests carry a bad value, an unknown field, a body that is
    not JSON or not an object, or an unknown order id, then each is refused with the field
    named and the value quoted, the status the gRPC code maps to, and no order exists after."""
    bad = b2c_order()
    bad["lines"][0]["quantity"] = 0
    answer = httpx.post(url(edge, "/v1/orders"), json=bad)
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == "INVALID_ARGUMENT"
    assert body["problems"][0]["field"] == "lines[0].quantity"
    assert body["problems"][0]["value"] == "0"
    unknown = httpx.post(url(edge, "/v1/orders"), json={"chanel": "web"})
    assert unknown.status_code == 400 and "chanel" in unknown.json()["message"]
    for raw in (b"{not json", b"[1, 2]", b'"text"'):
        answer = httpx.post(url(edge, "/v1/orders"), content=raw)
        assert answer.status_code == 400, raw
        assert answer.json()["problems"][0]["field"] == "body"
    missing = httpx.get(url(edge, "/v1/orders/O-999999"))
    assert missing.status_code == 404
    assert "O-999999" in missing.json()["message"]
    assert edge.orders.store.list_orders(None, None, 0, 10) == []


def test_a_body_past_the_payload_limit_is_refused_before_it_is_read(edge: Running) -> None:
    """Given the HTTP edge, when a body over 1 MiB arrives (an order, a sale), then it is
    refused 413 RESOURCE_EXHAUSTED naming the body and its size, and nothing is placed."""
    for path in ("/v1/orders", "/v1/channels/till-berlin/sales"):
        answer = httpx.post(url(edge, path), content=b" " * (1024 * 1024 + 1))
        assert answer.status_code == 413, path
    answer = httpx.post(url(edge, "/v1/orders"), content=b" " * (1024 * 1024 + 1))
    assert answer.json()["code"] == "RESOURCE_EXHAUSTED"
    assert "body" in answer.json()["message"]


def test_openapi_health_and_metrics_are_served(edge: Running) -> None:
    """Given the HTTP edge, then its OpenAPI document lists every route, /healthz answers
    SERVING, and the metrics endpoint counts HTTP calls by route template and status."""
    spec = httpx.get(url(edge, "/openapi.json")).json()
    for path in (
        "/webhooks/{channel}",
        "/v1/orders",
        "/v1/orders/{order_id}",
        "/v1/orders/{order_id}/shipments/{shipment_id}/ship",
        "/v1/channels/{channel}/sales",
        "/v1/channels/{channel}/poll",
    ):
        assert path in spec["paths"], path
    assert httpx.get(url(edge, "/healthz")).json() == {"status": "SERVING"}
    httpx.get(url(edge, "/v1/orders/O-1"))
    scrape = httpx.get(f"http://127.0.0.1:{edge.metrics_port}/metrics").text
    assert 'allocation_http_duration_seconds_count{method="GET",route="/healthz",status="200"}' in (
        scrape
    )
    assert 'route="/v1/orders/{order_id}",status="404"' in scrape


def test_a_pos_sale_takes_the_store_stock_down_once(edge: Running) -> None:
    """Given a POS channel whose sku table maps an EAN to our sku, when the till posts a sale
    of 2 of the 5 units it holds, then the store's on-hand is 3; the same sale id again changes
    nothing; an unmapped EAN is refused naming the line, and changes nothing; selling more than
    the books hold stops on_hand at 0 and says what was cut."""
    sale = {
        "sale_id": "R-2026-000123",
        "store_id": "ST-BERLIN",
        "lines": [{"sku": "4006381333931", "quantity": 2}],
    }
    first = httpx.post(url(edge, "/v1/channels/till-berlin/sales"), json=sale)
    assert first.status_code == 200, first.text
    level = first.json()["levels"][0]
    assert (level["node_id"], level["sku"], level["on_hand"]) == ("ST-BERLIN", "SKU-0151", 3)
    again = httpx.post(url(edge, "/v1/channels/till-berlin/sales"), json=sale).json()
    assert again["levels"][0]["on_hand"] == level["on_hand"]
    unmapped = dict(sale, sale_id="R-2026-000124", lines=[{"sku": "999", "quantity": 1}])
    refused = httpx.post(url(edge, "/v1/channels/till-berlin/sales"), json=unmapped)
    assert refused.status_code == 400
    assert refused.json()["problems"][0]["field"] == "lines[0].sku"
    zero = dict(sale, sale_id="R-2026-000125", lines=[{"sku": "4006381333931", "quantity": 0}])
    assert httpx.post(url(edge, "/v1/channels/till-berlin/sales"), json=zero).status_code == 400
    third = dict(sale, sale_id="R-2026-000126", lines=[{"sku": "4006381333931", "quantity": 1}])
    after = httpx.post(url(edge, "/v1/channels/till-berlin/sales"), json=third).json()
    assert after["levels"][0]["on_hand"] == level["on_hand"] - 1
    assert after["clamped"] == []
    oversold = dict(sale, sale_id="R-2026-000127", lines=[{"sku": "4006381333931", "quantity": 9}])
    cut = httpx.post(url(edge, "/v1/channels/till-berlin/sales"), json=oversold).json()
    assert cut["levels"][0]["on_hand"] == 0
    assert cut["clamped"][0]["sku"] == "SKU-0151"


@pytest.mark.redis
def test_the_same_tokens_scopes_and_audit_as_grpc(tmp_path: Path, redis_url: str) -> None:
    """Given a server with --auth over Redis, when HTTP calls come without a token, with an
    unknown one, with a shop token (orders:place only) and a WMS token, then they get 401 with
    a Bearer challenge, 401, the shop may place but not ship (403), the WMS may ship; and every
    mutating call, refused ones included, is in the audit trail."""
    registry = RedisCallers.from_url(redis_url)
    shop = register(registry, name="app-shop", role="shop", channels=["app-de"]).token
    other = register(registry, name="other-shop", role="shop", channels=["web"]).token
    wms = register(registry, name="wms", role="wms", nodes=["WH-DORTMUND", "WH-NUREMBERG"]).token
    running = serve(tmp_path, redis_url=redis_url, access=AccessConfig(auth=True))
    try:
        anonymous = httpx.post(url(running, "/v1/orders"), json=b2c_order())
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"] == "Bearer"
        wrong = httpx.post(
            url(running, "/v1/orders"),
            json=b2c_order(),
            headers={"Authorization": "Bearer ae_not-a-token"},
        )
        assert wrong.status_code == 401
        foreign = httpx.post(
            url(running, "/v1/orders"),
            json=b2c_order(),
            headers={"Authorization": f"Bearer {other}"},
        )
        assert foreign.status_code == 403, foreign.text
        placed = httpx.post(
            url(running, "/v1/orders"),
            json=b2c_order(),
            headers={"Authorization": f"Bearer {shop}"},
        )
        assert placed.status_code == 200, placed.text
        order_id = placed.json()["order"]["id"]
        ship = {"carrier": "DHL", "tracking_number": "0034", "idempotency_key": "s1"}
        path = f"/v1/orders/{order_id}/shipments/{order_id}-S1/ship"
        denied = httpx.post(
            url(running, path), json=ship, headers={"Authorization": f"Bearer {shop}"}
        )
        assert denied.status_code == 403
        assert "shipments:confirm" in denied.json()["message"]
        allowed = httpx.post(
            url(running, path), json=ship, headers={"Authorization": f"Bearer {wms}"}
        )
        assert allowed.status_code in (200, 400), allowed.text  # 400: not released yet (unpaid)
        trail = [
            (e.caller, e.method.rsplit("/", 1)[1], e.code)
            for e in RedisAudit.from_url(redis_url).recent()
        ]
        assert ("app-shop", "PlaceOrder", "OK") in trail
        assert ("app-shop", "RecordShipment", "PERMISSION_DENIED") in trail
        assert ("other-shop", "PlaceOrder", "PERMISSION_DENIED") in trail
    finally:
        running.stop(1.0)


@pytest.mark.redis
def test_a_caller_past_its_rate_limit_is_told_when_to_retry(tmp_path: Path, redis_url: str) -> None:
    """Given a caller allowed 1 call a second with a burst of 1, when it calls twice at once,
    then the second answer is 429 with a Retry-After header."""
    registry = RedisCallers.from_url(redis_url)
    token = register(
        registry, name="slow", role="shop", channels=["app-de"], rate=1.0, burst=1
    ).token
    running = serve(tmp_path, redis_url=redis_url, access=AccessConfig(auth=True))
    try:
        headers = {"Authorization": f"Bearer {token}"}
        assert httpx.get(url(running, "/v1/orders/O-1"), headers=headers).status_code == 404
        limited = httpx.get(url(running, "/v1/orders/O-1"), headers=headers)
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
    finally:
        running.stop(1.0)


def test_the_edge_speaks_tls_with_the_grpc_certificate(tmp_path: Path) -> None:
    """Given a server with a TLS certificate, then the HTTP edge is HTTPS with that
    certificate (verified against the CA), and a plaintext request gets no answer."""
    ca = Authority(tmp_path)
    pair = ca.issue("localhost", server=True)
    running = serve(
        tmp_path,
        access=AccessConfig(auth=True, tls_cert=str(pair.cert), tls_key=str(pair.key)),
    )
    try:
        assert running.http is not None and running.http.url.startswith("https://")
        trust = ssl.create_default_context(cafile=str(ca.pair.cert))
        health = httpx.get(url(running, "/healthz"), verify=trust)
        assert health.json() == {"status": "SERVING"}
        assert running.dev_token is not None
        placed = httpx.post(
            url(running, "/v1/orders"),
            json=b2c_order(),
            headers={"Authorization": f"Bearer {running.dev_token}"},
            verify=trust,
        )
        assert placed.status_code == 200, placed.text
        with pytest.raises(httpx.HTTPError):
            httpx.get(url(running, "/healthz").replace("https://", "http://"), timeout=2)
    finally:
        running.stop(1.0)


def test_with_a_client_ca_the_edge_requires_a_client_certificate(tmp_path: Path) -> None:
    """Given a server with a client CA (mTLS), then an HTTPS client without a certificate is
    turned away at the handshake, and one with a certificate the CA signed gets in (and is
    still admitted by its token)."""
    ca = Authority(tmp_path)
    pair = ca.issue("localhost", server=True)
    client = ca.issue("erp-client", server=False)
    running = serve(
        tmp_path,
        access=AccessConfig(
            auth=True,
            tls_cert=str(pair.cert),
            tls_key=str(pair.key),
            tls_client_ca=str(ca.pair.cert),
        ),
    )
    try:
        bare = ssl.create_default_context(cafile=str(ca.pair.cert))
        with pytest.raises(httpx.HTTPError):
            httpx.get(url(running, "/healthz"), verify=bare, timeout=5)
        with_cert = ssl.create_default_context(cafile=str(ca.pair.cert))
        with_cert.load_cert_chain(str(client.cert), str(client.key))
        assert httpx.get(url(running, "/healthz"), verify=with_cert).status_code == 200
        anonymous = httpx.get(url(running, "/v1/orders/O-1"), verify=with_cert)
        assert anonymous.status_code == 401
    finally:
        running.stop(1.0)


def test_a_webhook_with_a_bad_signature_is_401_and_places_nothing(tmp_path: Path) -> None:
    """Given `serve --demo` with its demo Shopify shop, when the shop's orders/create webhook
    arrives with a signature made with another secret, with the body changed after signing, or
    with no signature, then each is 401 naming the header and no order exists; the correctly
    signed one is placed once, and its redelivery answers duplicate; the channel's counter says
    3 refused, 1 placed, 1 duplicate (and a made-up channel name adds no series); and nobody
    can PlaceOrder into the shop's channel over the API (an order the shop never took)."""
    orders = OrderConfig(mail_dir=str(tmp_path / "mail"), wms_dir=str(tmp_path / "wms"), demo=True)
    telemetry = TelemetryConfig(metrics_port=0)
    running = start(ServeConfig(port=0, http_port=0, demo=True, orders=orders, telemetry=telemetry))
    try:
        body = demo_shop_order().read_bytes()
        shop = ShopifyPeer({}, client_secret=DEMO_SHOP_SECRETS["DEMO_SHOPIFY_WEBHOOK_SECRET"])
        forger = ShopifyPeer({}, client_secret="guessed")
        edge = url(running, "")
        for answer in (
            shop.deliver(edge, DEMO_SHOP, body, signature=forger.sign(body)),
            shop.deliver(edge, DEMO_SHOP, body + b"\n", signature=shop.sign(body)),
            shop.deliver(edge, DEMO_SHOP, body, signature=""),
        ):
            assert answer.status_code == 401
            assert "X-Shopify-Hmac-Sha256" in answer.json()["message"]
        assert running.orders.store.list_orders(None, None, 0, 10) == []
        placed = shop.deliver(edge, DEMO_SHOP, body, webhook_id="d-1").json()
        assert [o["created"] for o in placed["orders"]] == [True]
        assert shop.deliver(edge, DEMO_SHOP, body, webhook_id="d-1").json()["duplicate"] is True
        assert len(running.orders.store.list_orders(None, None, 0, 10)) == 1
        forged_order = b2c_order("forged-1") | {"channel": DEMO_SHOP}
        refused = httpx.post(url(running, "/v1/orders"), json=forged_order)
        assert refused.status_code == 400, refused.text  # only the shop places its orders
        assert refused.json()["problems"][0]["field"] == "channel"
        assert len(running.orders.store.list_orders(None, None, 0, 10)) == 1
        shop.deliver(edge, "no-such-shop", body)
        scrape = httpx.get(f"http://127.0.0.1:{running.metrics_port}/metrics").text
        counted = (
            'allocation_channel_orders_total{channel="shopify-demo",outcome="%s",via="webhook"}'
        )
        assert counted % "refused" + " 3.0" in scrape
        assert counted % "placed" + " 1.0" in scrape
        assert counted % "duplicate" + " 1.0" in scrape
        assert "no-such-shop" not in scrape
    finally:
        running.stop(1.0)


def test_json_nested_past_the_parser_is_bad_input_not_a_crash(edge: Running) -> None:
    """Given bodies of 100,000 nested brackets, then they are 400 naming the body."""
    for raw in (b"[" * 100_000, b'{"a":' * 100_000):
        answer = httpx.post(url(edge, "/v1/orders"), content=raw)
        assert answer.status_code == 400, answer.text
        assert answer.json()["problems"][0]["field"] == "body"


def test_the_openapi_document_says_what_the_edge_answers(edge: Running) -> None:
    """Given the published document, then every route lists the edge's own error body (no
    framework 422 that never comes), guarded routes name the bearer scheme, and the sale's
    body is described field by field."""
    spec = httpx.get(url(edge, "/openapi.json")).json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "ErrorBody" in spec["components"]["schemas"]
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            assert "422" not in operation["responses"], path
            assert operation["responses"]["400"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorBody"
            }
    sale = spec["paths"]["/v1/channels/{channel}/sales"]["post"]
    assert sale["security"]
    fields = sale["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert {"sale_id", "store_id", "lines"} <= set(fields)


def test_sales_only_on_pos_channels_and_from_stores(edge: Running) -> None:
    """Given an app channel and a warehouse, then a sale on the app channel and a sale from
    the warehouse are each refused naming the field, and a sale body that is not the model is
    named field by field."""
    sale = {
        "sale_id": "R-1",
        "store_id": "ST-BERLIN",
        "lines": [{"sku": "SKU-0151", "quantity": 1}],
    }
    app_sale = httpx.post(url(edge, "/v1/channels/app-de/sales"), json=sale)
    assert app_sale.status_code == 400 and app_sale.json()["problems"][0]["field"] == "channel"
    warehouse = dict(sale, store_id="WH-HAMBURG", lines=[{"sku": "4006381333931", "quantity": 1}])
    refused = httpx.post(url(edge, "/v1/channels/till-berlin/sales"), json=warehouse)
    assert refused.status_code == 400 and refused.json()["problems"][0]["field"] == "store_id"
    garbled = httpx.post(url(edge, "/v1/channels/till-berlin/sales"), json={"lines": "x"})
    assert garbled.status_code == 400
    assert {"sale_id", "store_id", "lines"} <= {p["field"] for p in garbled.json()["problems"]}


def test_odd_methods_and_bugs_stay_bounded(edge: Running, tmp_path: Path) -> None:
    """Given requests with invented HTTP methods, then metrics count them as OTHER (no series
    per invention); and an error that is ours (a bug) is a JSON 500 with no details."""
    for i in range(5):
        httpx.request(f"X{i:04d}", url(edge, "/healthz"))
    scrape = httpx.get(f"http://127.0.0.1:{edge.metrics_port}/metrics").text
    assert 'method="OTHER"' in scrape and "X0001" not in scrape

    def broken() -> bool:
        raise RuntimeError("a bug")

    app = build_app(HttpDeps(None, None, HttpGate.open(SystemClock()), broken))  # type: ignore[arg-type]
    server = HttpServer(app, "127.0.0.1", 0).start()
    try:
        answer = httpx.get(f"{server.url}/healthz")
    finally:
        server.stop(0.5)
    assert answer.status_code == 500
    assert answer.json()["code"] == "INTERNAL" and "a bug" not in answer.text


@pytest.mark.redis
def test_a_refused_caller_is_answered_before_its_body_is_read(
    tmp_path: Path, redis_url: str
) -> None:
    """Given --auth, when a caller without a token sends garbage bodies, then each is 401
    (not a 400 about the body: nothing of it was read)."""
    running = serve(tmp_path, redis_url=redis_url, access=AccessConfig(auth=True))
    try:
        for path in (
            "/v1/orders",
            "/v1/orders/O-1/shipments/S-1/ship",
            "/v1/channels/till-berlin/sales",
        ):
            answer = httpx.post(url(running, path), content=b"garbage")
            assert answer.status_code == 401, (path, answer.text)
    finally:
        running.stop(1.0)
