"""POST /v1/promises: what a storefront may promise for a cart, per service level, or why not."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.inventory.test_catalog_api import assert_problem
from tests.support import DOWNTOWN, EDMONTON, order_body, seed_catalog

Headers = dict[str, str]


def ask(client: TestClient, shop: Headers, lines: list[dict[str, object]], **extra: object) -> dict:
    body = {"destination": dict(DOWNTOWN), "lines": lines, **extra}
    response = client.post("/v1/promises", json=body, headers=shop)
    assert response.status_code == 200, response.text
    return {o["service_level"]: o for o in response.json()["options"]}


def test_each_service_level_has_its_window_order_by_nodes_and_cost(
    client: TestClient, admin: Headers, shop: Headers
) -> None:
    seed_catalog(client, admin)
    options = ask(client, shop, [{"sku": "TEA-1", "quantity": 2}])
    same_day = options["same_day"]
    # 08:30 in Edmonton: WH1's 10:00 wave (17:00 UTC), delivered 11:00-14:00 local.
    assert same_day["available"] and same_day["nodes"] == ["WH1"] and same_day["shipments"] == 1
    assert (same_day["order_by"], same_day["window_start"]) == (
        "2026-11-18T17:00:00Z",
        "2026-11-18T18:00:00Z",
    )
    assert same_day["cost"] > 0 and same_day["currency"] == "CAD"
    assert options["next_day"]["order_by"] == "2026-11-19T07:00:00Z"  # local midnight
    assert options["standard"]["cost"] < options["next_day"]["cost"]
    # A cart only a split can fill: two shipments, and the stock is untouched by asking.
    split = ask(client, shop, [{"sku": "MUG-1", "quantity": 22}], service_levels=["next_day"])
    assert split["next_day"]["shipments"] == 2 and set(split["next_day"]["nodes"]) == {"WH1", "ST1"}
    assert sum(ln["quantity"] for s in split["next_day"]["split"] for ln in s["lines"]) == 22
    stock = client.get("/v1/stock", params={"sku": "MUG-1"}, headers=admin).json()
    assert {r["node"]: r["reserved"] for r in stock} == {"WH1": 0, "ST1": 0}


def test_after_the_last_cutoff_same_day_is_refused_with_each_nodes_reason(
    client: TestClient, admin: Headers, shop: Headers
) -> None:
    seed_catalog(client, admin)
    # 23:30 UTC is 16:30 in Edmonton: every wave of the day has closed, though UTC is the 18th.
    options = ask(client, shop, [{"sku": "TEA-1", "quantity": 1}], at="2026-11-18T23:30:00Z")
    same_day = options["same_day"]
    assert not same_day["available"] and same_day["problem"] == "service-level-unavailable"
    assert same_day["details"]["nodes"] == {
        "ST1": "no wave cutoff left today",
        "WH1": "no wave cutoff left today",
    }
    # Next day is still the 19th in Edmonton, to be ordered by its midnight (07:00 UTC).
    assert options["next_day"]["window_start"] == "2026-11-19T16:00:00Z"
    assert options["next_day"]["order_by"] == "2026-11-19T07:00:00Z"
    short = ask(client, shop, [{"sku": "TEA-1", "quantity": 31}], service_levels=["standard"])
    assert short["standard"]["problem"] == "out-of-stock"
    assert "only 30 of TEA-1" in short["standard"]["reason"]


def test_same_day_is_offered_only_while_the_waves_vans_have_room(
    client: TestClient, admin: Headers, shop: Headers
) -> None:
    seed_catalog(client, admin, vans=False)
    tokyo = {
        "code": "TYO",
        "name": "Tokyo store",
        "kind": "store",
        "lat": 35.68,
        "lon": 139.76,
        "timezone": "Asia/Tokyo",
        "same_day_radius_km": 20,
        "wave_cutoffs": ["18:00"],
    }
    assert client.post("/v1/nodes", json=tokyo, headers=admin).status_code == 201
    client.put("/v1/nodes/TYO/stock", json=[{"sku": "TEA-1", "on_hand": 9}], headers=admin)
    van = {
        "code": "TYO-1",
        "node": "TYO",
        "capacity_parcels": 1,
        "capacity_kg": 50,
        "shift_start": "09:00",
        "shift_end": "23:00",
    }
    assert client.post("/v1/vans", json=van, headers=admin).status_code == 201
    ginza = {"lat": 35.67, "lon": 139.77}
    body = {"destination": ginza, "lines": [{"sku": "TEA-1", "quantity": 1}]}
    # 08:30 in Edmonton is 00:30 the next day in Tokyo: that day's 18:00 wave (09:00 UTC).
    first = client.post("/v1/promises", json=body, headers=shop).json()["options"][0]
    assert first["available"] and first["order_by"] == "2026-11-19T09:00:00Z"
    order = {
        "external_id": "t-1",
        "customer": {"name": "Aiko", "email": "aiko@example.jp"},
        "destination": ginza,
        "service_level": "same_day",
        "lines": [{"sku": "TEA-1", "quantity": 1}],
    }
    assert client.post("/v1/orders", json=order, headers=shop).status_code == 201
    second = client.post("/v1/promises", json=body, headers=shop).json()["options"][0]
    assert not second["available"]
    assert second["details"]["nodes"]["TYO"].endswith("TYO-1: no capacity left")
    refused = client.post("/v1/orders", json=order | {"external_id": "t-2"}, headers=shop)
    assert assert_problem(refused, 409)["type"].endswith("/service-level-unavailable")


def test_a_bad_cart_is_a_422_naming_the_line(
    client: TestClient, admin: Headers, shop: Headers
) -> None:
    seed_catalog(client, admin)
    body = {"destination": dict(DOWNTOWN), "lines": [{"sku": "NOPE-1", "quantity": 1}]}
    problem = assert_problem(client.post("/v1/promises", json=body, headers=shop), 422)
    assert problem["errors"][0]["field"] == "lines[0].sku"
    naive = {
        "destination": dict(DOWNTOWN),
        "lines": [{"sku": "TEA-1", "quantity": 1}],
        "at": "2026-11-18T10:00:00",
    }
    assert client.post("/v1/promises", json=naive, headers=shop).status_code == 422


def test_a_nodes_pick_capacity_lasts_its_local_day(
    client: TestClient, admin: Headers, shop: Headers
) -> None:
    product = {"sku": "TEA-1", "name": "Green tea", "weight_kg": 0.3}
    assert client.post("/v1/products", json=product, headers=admin).status_code == 201
    nodes = [
        {
            "code": "WH1",
            "name": "Depot",
            "kind": "warehouse",
            **EDMONTON,
            "pick_capacity_per_day": 3,
        },
        {
            "code": "ST1",
            "name": "Store",
            "kind": "store",
            "lat": 53.44,
            "lon": -113.60,
            "timezone": "America/Edmonton",
        },
    ]
    for node in nodes:
        assert client.post("/v1/nodes", json=node, headers=admin).status_code == 201
        stock = [{"sku": "TEA-1", "on_hand": 20}]
        client.put(f"/v1/nodes/{node['code']}/stock", json=stock, headers=admin)
    tea = [{"sku": "TEA-1", "quantity": 1}]
    assert ask(client, shop, tea, service_levels=["standard"])["standard"]["nodes"] == ["WH1"]
    order = order_body("cap-1", service_level="standard", lines=[{"sku": "TEA-1", "quantity": 3}])
    assert client.post("/v1/orders", json=order, headers=shop).status_code == 201
    # WH1 has picked its 3 units for the 18th in Edmonton, until its own midnight (07:00 UTC).
    for at, nodes_then in (
        ("2026-11-18T16:00:00Z", ["ST1"]),
        ("2026-11-19T06:59:00Z", ["ST1"]),
        ("2026-11-19T07:01:00Z", ["WH1"]),
    ):
        options = ask(client, shop, tea, service_levels=["standard"], at=at)
        assert options["standard"]["nodes"] == nodes_then, at
