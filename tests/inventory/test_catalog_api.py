from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support import seed_catalog

PROBLEM = "application/problem+json"


def assert_problem(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status
    if field is not None:
        assert field in [e["field"] for e in body["errors"]], body
    return body


def test_a_product_is_created_and_listed(client: TestClient, admin: dict[str, str]) -> None:
    body = {"sku": "TEA-1", "name": "Green tea", "weight_kg": 0.3, "height_cm": 8}
    created = client.post("/v1/products", json=body, headers=admin)
    assert created.status_code == 201
    assert created.json()["sku"] == "TEA-1"
    listed = client.get("/v1/products", headers=admin).json()
    assert [(p["sku"], p["height_cm"]) for p in listed] == [("TEA-1", 8)]


def test_a_duplicate_sku_is_a_conflict(client: TestClient, admin: dict[str, str]) -> None:
    body = {"sku": "TEA-1", "name": "Green tea", "weight_kg": 0.3}
    client.post("/v1/products", json=body, headers=admin)
    problem = assert_problem(client.post("/v1/products", json=body, headers=admin), 409)
    assert "TEA-1" in problem["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"sku": "TEA 1", "name": "x", "weight_kg": 1}, "sku"),
        ({"sku": "TEA-1", "name": "", "weight_kg": 1}, "name"),
        ({"sku": "TEA-1", "name": "x", "weight_kg": 0}, "weight_kg"),
        ({"sku": "TEA-1", "name": "x", "weight_kg": -2}, "weight_kg"),
        ({"sku": "TEA-1", "name": "x"}, "weight_kg"),
        ({"sku": "TEA-1", "name": "x", "weight_kg": 1, "id": 7}, "id"),
    ],
)
def test_bad_products_are_refused_naming_the_field(
    client: TestClient, admin: dict[str, str], body: dict[str, Any], field: str
) -> None:
    assert_problem(client.post("/v1/products", json=body, headers=admin), 422, field)
    assert client.get("/v1/products", headers=admin).json() == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"wave_cutoffs": ["10:00", "25:00"]}, "wave_cutoffs[1]"),  # the very cutoff at fault
        ({"kind": "depot"}, "kind"),
        ({"lat": 91}, "lat"),
        ({"same_day_radius_km": -1}, "same_day_radius_km"),
    ],
)
def test_bad_nodes_are_refused_naming_the_field(
    client: TestClient, admin: dict[str, str], change: dict[str, Any], field: str
) -> None:
    node = {
        "code": "WH1",
        "name": "W",
        "kind": "warehouse",
        "lat": 53.5,
        "lon": -113.5,
        "timezone": "America/Edmonton",
    } | change
    assert_problem(client.post("/v1/nodes", json=node, headers=admin), 422, field)


def test_cutoffs_are_normalised_and_sorted(client: TestClient, admin: dict[str, str]) -> None:
    cutoffs = ["16:00", "9:30", "16:00:00"]
    node = {
        "code": "WH1",
        "name": "W",
        "kind": "warehouse",
        "lat": 53.5,
        "lon": -113.5,
        "timezone": "America/Edmonton",
        "wave_cutoffs": cutoffs,
    }
    created = client.post("/v1/nodes", json=node, headers=admin).json()
    assert created["wave_cutoffs"] == ["09:30", "16:00"]


def test_a_third_party_node_has_no_same_day_radius(
    client: TestClient, admin: dict[str, str]
) -> None:
    node = {
        "code": "FBA1",
        "name": "FBA",
        "kind": "third_party",
        "lat": 53.5,
        "lon": -113.5,
        "timezone": "America/Edmonton",
        "same_day_radius_km": 20,
    }
    assert_problem(client.post("/v1/nodes", json=node, headers=admin), 422, "same_day_radius_km")


def test_stock_upsert_reads_back_per_node(client: TestClient, admin: dict[str, str]) -> None:
    seed_catalog(client, admin)
    rows = client.get("/v1/stock", params={"sku": "TEA-1"}, headers=admin).json()
    assert [(r["node"], r["on_hand"], r["reserved"], r["available"]) for r in rows] == [
        ("ST1", 20, 0, 20),
        ("WH1", 10, 0, 10),
    ]
    again = client.put("/v1/nodes/WH1/stock", json=[{"sku": "TEA-1", "on_hand": 7}], headers=admin)
    assert again.json()[0]["on_hand"] == 7
    ledger = client.get(
        "/v1/stock/movements", params={"node": "WH1", "sku": "TEA-1"}, headers=admin
    ).json()
    assert [(m["reason"], m["on_hand_delta"], m["on_hand_after"]) for m in ledger] == [
        ("count", -3, 7),
        ("count", 10, 10),
    ]


def test_stock_for_an_unknown_node_or_sku_is_refused(
    client: TestClient, admin: dict[str, str]
) -> None:
    seed_catalog(client, admin)
    body = [{"sku": "TEA-1", "on_hand": 1}]
    assert_problem(client.put("/v1/nodes/NOPE/stock", json=body, headers=admin), 404)
    unknown = [{"sku": "TEA-1", "on_hand": 1}, {"sku": "GHOST", "on_hand": 1}]
    problem = assert_problem(
        client.put("/v1/nodes/WH1/stock", json=unknown, headers=admin), 422, "[1].sku"
    )
    assert "GHOST" in problem["detail"]
    rows = client.get("/v1/stock", params={"sku": "TEA-1", "node": "WH1"}, headers=admin).json()
    assert rows[0]["on_hand"] == 10  # the whole request changed nothing


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([{"sku": "TEA-1", "on_hand": -1}], "[0].on_hand"),
        ([{"sku": "TEA-1", "on_hand": 1.5}], "[0].on_hand"),
        ([], "body"),
        ([{"sku": "TEA-1", "on_hand": 1}, {"sku": "TEA-1", "on_hand": 2}], "[1].sku"),
    ],
)
def test_malformed_stock_levels_are_refused(
    client: TestClient, admin: dict[str, str], body: Any, field: str
) -> None:
    seed_catalog(client, admin)
    assert_problem(client.put("/v1/nodes/WH1/stock", json=body, headers=admin), 422, field)


def test_adjustments_are_kept_in_the_ledger(client: TestClient, admin: dict[str, str]) -> None:
    seed_catalog(client, admin)
    body = [
        {"sku": "MUG-1", "delta": -2, "reason": "damage", "note": "dropped"},
        {"sku": "TEA-1", "delta": 5, "reason": "receipt"},
    ]
    result = client.post("/v1/nodes/WH1/stock/adjustments", json=body, headers=admin)
    assert result.status_code == 201
    assert {(r["sku"], r["on_hand"]) for r in result.json()} == {("MUG-1", 3), ("TEA-1", 15)}
    ledger = client.get(
        "/v1/stock/movements", params={"sku": "MUG-1", "node": "WH1"}, headers=admin
    ).json()
    assert (ledger[0]["reason"], ledger[0]["on_hand_delta"], ledger[0]["note"]) == (
        "damage",
        -2,
        "dropped",
    )


def test_stock_cannot_go_below_zero_or_below_reservations(
    client: TestClient, admin: dict[str, str], shop: dict[str, str]
) -> None:
    seed_catalog(client, admin)
    too_much = [{"sku": "MUG-1", "delta": -6, "reason": "loss"}]
    assert_problem(
        client.post("/v1/nodes/WH1/stock/adjustments", json=too_much, headers=admin), 409
    )
    order = {
        "external_id": "o1",
        "customer": {"name": "A", "email": "a@example.com"},
        "destination": {"lat": 53.5436, "lon": -113.4923},
        "service_level": "same_day",
        "lines": [{"sku": "MUG-1", "quantity": 4}],
    }
    assert client.post("/v1/orders", json=order, headers=shop).status_code == 201
    below = client.put("/v1/nodes/WH1/stock", json=[{"sku": "MUG-1", "on_hand": 3}], headers=admin)
    problem = assert_problem(below, 409)
    assert problem["reserved"] == 4


@pytest.mark.parametrize("reason", ["reservation", "release", "count", "theft"])
def test_adjustment_reasons_the_service_owns_are_refused(
    client: TestClient, admin: dict[str, str], reason: str
) -> None:
    seed_catalog(client, admin)
    body = [{"sku": "TEA-1", "delta": 1, "reason": reason}]
    assert_problem(
        client.post("/v1/nodes/WH1/stock/adjustments", json=body, headers=admin), 422, "[0].reason"
    )
