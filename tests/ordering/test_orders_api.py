from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fulfill.auth import Scope
from tests.inventory.test_catalog_api import assert_problem
from tests.support import available, order_body, seed_catalog

Headers = dict[str, str]


@pytest.fixture
def seeded(client: TestClient, admin: Headers) -> TestClient:
    seed_catalog(client, admin)
    return client


def test_an_order_reserves_stock_at_the_nearest_node_and_promises_a_window(
    seeded: TestClient, shop: Headers, admin: Headers
) -> None:
    response = seeded.post("/v1/orders", json=order_body(), headers=shop)
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "confirmed"
    assert order["fulfillments"][0]["node"] == "WH1"
    assert order["fulfillments"][0]["lines"] == [{"sku": "TEA-1", "quantity": 2}]
    # Ordered at 08:30 in Edmonton: the 10:00 wave, delivered 11:00-14:00 local (UTC-7).
    assert order["promise"] == {
        "service_level": "same_day",
        "window_start": "2026-11-18T18:00:00Z",
        "window_end": "2026-11-18T21:00:00Z",
        "order_by": "2026-11-18T17:00:00Z",
    }
    assert [e["kind"] for e in order["timeline"]] == ["order.created"]
    assert available(seeded, admin, "TEA-1", "WH1") == 8
    assert available(seeded, admin, "TEA-1", "ST1") == 20
    fetched = seeded.get(f"/v1/orders/{order['id']}", headers=shop).json()
    assert fetched == order


def test_an_order_the_nearest_node_cannot_ship_whole_goes_to_the_next(
    seeded: TestClient, shop: Headers, admin: Headers
) -> None:
    body = order_body(service_level="next_day", lines=[{"sku": "MUG-1", "quantity": 6}])
    order = seeded.post("/v1/orders", json=body, headers=shop).json()
    assert order["fulfillments"][0]["node"] == "ST1"
    assert order["promise"]["window_start"] == "2026-11-19T16:00:00Z"
    assert available(seeded, admin, "MUG-1", "ST1") == 14


def test_out_of_stock_names_the_sku_and_what_is_left(
    seeded: TestClient, shop: Headers, admin: Headers
) -> None:
    # 5 at WH1 and 20 at ST1: 25 in all, split over both if need be, but not 26.
    body = order_body(service_level="next_day", lines=[{"sku": "MUG-1", "quantity": 26}])
    problem = assert_problem(seeded.post("/v1/orders", json=body, headers=shop), 409)
    assert (problem["sku"], problem["requested"], problem["available"]) == ("MUG-1", 26, 25)
    assert problem["type"].endswith("/out-of-stock")
    assert available(seeded, admin, "MUG-1", "ST1") == 20
    assert seeded.get("/v1/orders", headers=shop).json()["items"] == []


def test_same_day_beyond_every_radius_is_refused_with_the_reason(
    seeded: TestClient, shop: Headers
) -> None:
    far = order_body(destination={"lat": 51.045, "lon": -114.072})  # Calgary
    problem = assert_problem(seeded.post("/v1/orders", json=far, headers=shop), 409)
    assert problem["type"].endswith("/service-level-unavailable")
    assert (
        seeded.post(
            "/v1/orders",
            json=order_body(destination={"lat": 51.045, "lon": -114.072}, service_level="standard"),
            headers=shop,
        ).status_code
        == 201
    )


@pytest.mark.parametrize(
    ("address", "lat"),
    [
        ({"line1": "10220 103 Ave NW", "city": "Edmonton", "postal_code": "T5J 0K4"}, 53.5455),
        ({"line1": "8 Unknown St", "city": "Edmonton", "postal_code": "T6G"}, 53.5232),
    ],
)
def test_an_address_is_geocoded_as_precisely_as_known(
    seeded: TestClient, shop: Headers, address: dict[str, str], lat: float
) -> None:
    order = seeded.post(
        "/v1/orders", json=order_body(destination={"address": address}), headers=shop
    ).json()
    assert order["destination"]["lat"] == pytest.approx(lat)
    assert order["destination"]["address"]["line1"] == address["line1"]


def test_an_address_that_cannot_be_geocoded_is_a_422(seeded: TestClient, shop: Headers) -> None:
    body = order_body(destination={"address": {"line1": "1 Nowhere Rd", "city": "Atlantis"}})
    problem = assert_problem(
        seeded.post("/v1/orders", json=body, headers=shop), 422, "destination.address"
    )
    assert "Atlantis" in problem["detail"]


def test_a_customer_chooses_channels_language_and_quiet_hours(
    seeded: TestClient, shop: Headers
) -> None:
    customer = {
        "name": "Émile",
        "email": "emile@example.ca",
        "phone": "+15145550100",
        "channels": ["sms", "email"],
        "language": "fr-CA",
        "timezone": "America/Toronto",
        "quiet_hours": {"start": "21:30", "end": "7:00"},
    }
    order = seeded.post("/v1/orders", json=order_body(customer=customer), headers=shop).json()
    shown = seeded.get(f"/v1/orders/{order['id']}", headers=shop).json()["customer"]
    assert shown["channels"] == ["sms", "email"] and shown["language"] == "fr-CA"
    assert shown["quiet_hours"] == {"start": "21:30", "end": "07:00"}
    assert shown["timezone"] == "America/Toronto"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"lines": [{"sku": "TEA-1", "quantity": 0}]}, "lines[0].quantity"),
        ({"lines": [{"sku": "TEA-1", "quantity": -3}]}, "lines[0].quantity"),
        ({"lines": []}, "lines"),
        ({"service_level": "yesterday"}, "service_level"),
        ({"destination": {}}, "destination"),
        ({"destination": {"lat": 53.5}}, "destination"),
        ({"customer": {"name": "A", "channels": ["sms"]}}, "customer"),
        ({"customer": {"name": "A", "email": "not-an-email"}}, "customer.email"),
        (
            {"customer": {"name": "A", "email": "a@b.co", "timezone": "Mars/Olympus"}},
            "customer.timezone",
        ),
        (
            {
                "customer": {
                    "name": "A",
                    "email": "a@b.co",
                    "quiet_hours": {"start": "25:00", "end": "08:00"},
                }
            },
            "customer.quiet_hours.start",
        ),
        (
            {
                "customer": {
                    "name": "A",
                    "email": "a@b.co",
                    "quiet_hours": {"start": "08:00", "end": "8:00"},
                }
            },
            "customer.quiet_hours",
        ),
        ({"status": "delivered"}, "status"),
    ],
)
def test_malformed_orders_are_refused_naming_the_field(
    seeded: TestClient, shop: Headers, admin: Headers, change: dict[str, Any], field: str
) -> None:
    assert_problem(seeded.post("/v1/orders", json=order_body(**change), headers=shop), 422, field)
    assert available(seeded, admin, "TEA-1", "WH1") == 10


def test_unknown_and_repeated_skus_are_refused(seeded: TestClient, shop: Headers) -> None:
    unknown = order_body(lines=[{"sku": "TEA-1", "quantity": 1}, {"sku": "NOPE", "quantity": 1}])
    problem = assert_problem(
        seeded.post("/v1/orders", json=unknown, headers=shop), 422, "lines[1].sku"
    )
    assert problem["sku"] == "NOPE"
    twice = order_body(lines=[{"sku": "TEA-1", "quantity": 1}, {"sku": "TEA-1", "quantity": 1}])
    assert_problem(seeded.post("/v1/orders", json=twice, headers=shop), 422, "lines[1].sku")


def test_malformed_json_is_a_400(seeded: TestClient, shop: Headers) -> None:
    response = seeded.post(
        "/v1/orders",
        content=b'{"external_id": ',
        headers=shop | {"content-type": "application/json"},
    )
    problem = assert_problem(response, 400)
    assert problem["type"].endswith("/malformed-json")


def test_a_storefront_external_id_is_unique(seeded: TestClient, shop: Headers) -> None:
    first = seeded.post("/v1/orders", json=order_body(), headers=shop).json()
    problem = assert_problem(seeded.post("/v1/orders", json=order_body(), headers=shop), 409)
    assert problem["order_id"] == first["id"]


def test_keys_and_scopes_are_enforced(
    seeded: TestClient, shop: Headers, make_key: Callable[..., Headers]
) -> None:
    assert_problem(seeded.post("/v1/orders", json=order_body()), 401)
    assert seeded.get("/v1/orders").headers["www-authenticate"] == "Bearer"
    bogus = {"Authorization": "Bearer ffk_not-a-key"}
    assert_problem(seeded.get("/v1/orders", headers=bogus), 401)
    carrier = make_key(Scope.CARRIER)
    problem = assert_problem(seeded.post("/v1/orders", json=order_body(), headers=carrier), 403)
    assert "storefront" in problem["detail"]
    assert_problem(seeded.get("/v1/orders", headers=carrier), 403)
    products = {"sku": "X-1", "name": "x", "weight_kg": 1}
    assert_problem(seeded.post("/v1/products", json=products, headers=shop), 403)


def test_a_storefront_sees_only_its_own_orders(
    seeded: TestClient, shop: Headers, make_key: Callable[..., Headers]
) -> None:
    order = seeded.post("/v1/orders", json=order_body(), headers=shop).json()
    other = make_key(Scope.STOREFRONT, name="other-shop")
    assert_problem(seeded.get(f"/v1/orders/{order['id']}", headers=other), 404)
    assert seeded.get("/v1/orders", headers=other).json()["items"] == []
    assert_problem(seeded.post(f"/v1/orders/{order['id']}/cancel", headers=other), 404)
    dispatcher = make_key(Scope.DISPATCHER)
    assert seeded.get(f"/v1/orders/{order['id']}", headers=dispatcher).status_code == 200


def test_cancelling_releases_the_reservation_once(
    seeded: TestClient, shop: Headers, admin: Headers
) -> None:
    order = seeded.post("/v1/orders", json=order_body(), headers=shop).json()
    cancelled = seeded.post(
        f"/v1/orders/{order['id']}/cancel", json={"reason": "changed mind"}, headers=shop
    )
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["fulfillments"][0]["status"] == "cancelled"
    assert [e["kind"] for e in cancelled.json()["timeline"]] == ["order.created", "order.cancelled"]
    assert available(seeded, admin, "TEA-1", "WH1") == 10
    again = seeded.post(f"/v1/orders/{order['id']}/cancel", headers=shop)
    assert again.status_code == 200
    assert available(seeded, admin, "TEA-1", "WH1") == 10
    ledger = seeded.get(
        "/v1/stock/movements", params={"order_id": order["id"]}, headers=admin
    ).json()
    assert [(m["reason"], m["reserved_delta"]) for m in ledger] == [
        ("release", -2),
        ("reservation", 2),
    ]


def test_cancelling_an_unknown_order_is_a_404(seeded: TestClient, shop: Headers) -> None:
    assert_problem(seeded.post("/v1/orders/nope/cancel", headers=shop), 404)


def test_listing_filters_and_pages_without_gaps(seeded: TestClient, shop: Headers) -> None:
    ids = []
    for n in range(7):
        body = order_body(
            f"web-{n}", lines=[{"sku": "TEA-1", "quantity": 1}], service_level="next_day"
        )
        ids.append(seeded.post("/v1/orders", json=body, headers=shop).json()["id"])
    seeded.post(f"/v1/orders/{ids[0]}/cancel", headers=shop)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = seeded.get("/v1/orders", params=params, headers=shop).json()
        seen += [o["id"] for o in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 7
    cancelled = seeded.get("/v1/orders", params={"status": "cancelled"}, headers=shop).json()
    assert [o["id"] for o in cancelled["items"]] == [ids[0]]
    by_external = seeded.get("/v1/orders", params={"external_id": "web-3"}, headers=shop).json()
    assert [o["id"] for o in by_external["items"]] == [ids[3]]


@pytest.mark.parametrize("params", [{"cursor": "garbage"}, {"limit": 0}, {"status": "lost"}])
def test_bad_list_parameters_are_refused(
    seeded: TestClient, shop: Headers, params: dict[str, Any]
) -> None:
    assert_problem(seeded.get("/v1/orders", params=params, headers=shop), 422)


def test_unknown_routes_are_problems_too(seeded: TestClient, shop: Headers) -> None:
    assert_problem(seeded.get("/v1/nothing", headers=shop), 404)
    assert_problem(seeded.delete("/v1/orders", headers=shop), 405)


def test_health_readiness_and_metrics(seeded: TestClient) -> None:
    assert seeded.get("/healthz").json() == {"status": "ok"}
    assert seeded.get("/readyz").json() == {"status": "ready"}
    metrics = seeded.get("/metrics").text
    assert 'fulfill_http_requests_total{method="POST",route="/v1/products",status="201"}' in metrics
