"""Stock is never oversold: real concurrent HTTP clients against a real server and database."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
from fastapi.testclient import TestClient

from tests.support import order_body

Headers = dict[str, str]


def test_fifty_clients_for_the_last_ten_units_reserve_exactly_ten(
    http: httpx.Client, client: TestClient, admin: Headers, shop: Headers
) -> None:
    client.post(
        "/v1/products", json={"sku": "LAST-1", "name": "Last", "weight_kg": 1}, headers=admin
    )
    for code, lat in (("WH1", 53.546), ("WH2", 53.60)):
        node = {
            "code": code,
            "name": code,
            "kind": "warehouse",
            "lat": lat,
            "lon": -113.494,
            "timezone": "America/Edmonton",
        }
        client.post("/v1/nodes", json=node, headers=admin)
    client.put("/v1/nodes/WH1/stock", json=[{"sku": "LAST-1", "on_hand": 6}], headers=admin)
    client.put("/v1/nodes/WH2/stock", json=[{"sku": "LAST-1", "on_hand": 4}], headers=admin)
    clients = 50
    barrier = threading.Barrier(clients)

    def place(n: int) -> httpx.Response:
        body = order_body(
            f"web-{n}", service_level="next_day", lines=[{"sku": "LAST-1", "quantity": 1}]
        )
        barrier.wait()
        return http.post("/v1/orders", json=body, headers=shop)

    with ThreadPoolExecutor(clients) as pool:
        responses = list(pool.map(place, range(clients)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 10 + [409] * 40
    for loser in (r for r in responses if r.status_code == 409):
        problem = loser.json()
        assert (problem["sku"], problem["available"]) == ("LAST-1", 0)
    stock = {
        r["node"]: r
        for r in client.get("/v1/stock", params={"sku": "LAST-1"}, headers=admin).json()
    }
    assert (stock["WH1"]["reserved"], stock["WH2"]["reserved"]) == (6, 4)
    assert stock["WH1"]["available"] == stock["WH2"]["available"] == 0
    winners = [r.json() for r in responses if r.status_code == 201]
    nodes = sorted(o["fulfillments"][0]["node"] for o in winners)
    assert nodes == ["WH1"] * 6 + ["WH2"] * 4
    ledger = client.get(
        "/v1/stock/movements", params={"sku": "LAST-1", "limit": 1000}, headers=admin
    ).json()
    assert sum(m["reserved_delta"] for m in ledger if m["reason"] == "reservation") == 10


def test_concurrent_orders_and_cancellations_keep_reservations_exact(
    http: httpx.Client, client: TestClient, admin: Headers, shop: Headers
) -> None:
    client.post("/v1/products", json={"sku": "S-1", "name": "S", "weight_kg": 1}, headers=admin)
    node = {
        "code": "WH1",
        "name": "W",
        "kind": "warehouse",
        "lat": 53.546,
        "lon": -113.494,
        "timezone": "America/Edmonton",
    }
    client.post("/v1/nodes", json=node, headers=admin)
    client.put("/v1/nodes/WH1/stock", json=[{"sku": "S-1", "on_hand": 30}], headers=admin)
    body = order_body("seed", service_level="next_day", lines=[{"sku": "S-1", "quantity": 1}])
    placed = [
        http.post("/v1/orders", json=body | {"external_id": f"first-{n}"}, headers=shop).json()[
            "id"
        ]
        for n in range(10)
    ]
    barrier = threading.Barrier(20)

    def cancel(order_id: str) -> int:
        barrier.wait()
        return http.post(f"/v1/orders/{order_id}/cancel", headers=shop).status_code

    def place(n: int) -> int:
        barrier.wait()
        return http.post(
            "/v1/orders", json=body | {"external_id": f"second-{n}"}, headers=shop
        ).status_code

    with ThreadPoolExecutor(20) as pool:
        cancels = [pool.submit(cancel, order_id) for order_id in placed]
        places = [pool.submit(place, n) for n in range(10)]
        assert {f.result() for f in cancels} == {200}
        assert {f.result() for f in places} == {201}
    row = client.get("/v1/stock", params={"sku": "S-1"}, headers=admin).json()[0]
    assert (row["on_hand"], row["reserved"], row["available"]) == (30, 10, 20)
