from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from sqlmodel import Session

from fulfill.auth import Scope
from fulfill.db import utcnow
from fulfill.idempotency import IdempotencyRecord
from tests.inventory.test_catalog_api import assert_problem
from tests.support import available, order_body, seed_catalog

Headers = dict[str, str]


def key(value: str) -> Headers:
    return {"Idempotency-Key": value}


def test_a_replay_returns_the_first_response(
    client: TestClient, admin: Headers, shop: Headers
) -> None:
    seed_catalog(client, admin)
    first = client.post("/v1/orders", json=order_body(), headers=shop | key("k1"))
    replay = client.post("/v1/orders", json=order_body(), headers=shop | key("k1"))
    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json()
    assert replay.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert available(client, admin, "TEA-1", "WH1") == 8
    assert len(client.get("/v1/orders", headers=shop).json()["items"]) == 1


def test_the_same_key_with_another_body_is_a_conflict(
    client: TestClient, admin: Headers, shop: Headers
) -> None:
    seed_catalog(client, admin)
    client.post("/v1/orders", json=order_body(), headers=shop | key("k1"))
    other = order_body(lines=[{"sku": "TEA-1", "quantity": 3}])
    problem = assert_problem(client.post("/v1/orders", json=other, headers=shop | key("k1")), 409)
    assert problem["type"].endswith("/idempotency-key-reused")
    assert available(client, admin, "TEA-1", "WH1") == 8


def test_keys_are_scoped_to_the_api_key(
    client: TestClient, admin: Headers, shop: Headers, make_key: Callable[..., Headers]
) -> None:
    seed_catalog(client, admin)
    other = make_key(Scope.STOREFRONT, name="other-shop")
    a = client.post("/v1/orders", json=order_body(), headers=shop | key("same"))
    b = client.post("/v1/orders", json=order_body(), headers=other | key("same"))
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]


def test_an_expired_key_is_fresh_again(
    client: TestClient, admin: Headers, shop: Headers, engine: Engine
) -> None:
    seed_catalog(client, admin)
    client.post("/v1/orders", json=order_body("web-1"), headers=shop | key("k1"))
    with Session(engine) as session:
        session.execute(update(IdempotencyRecord).values(created_at=utcnow() - timedelta(hours=25)))
        session.commit()
    second = client.post("/v1/orders", json=order_body("web-2"), headers=shop | key("k1"))
    assert second.status_code == 201
    assert second.json()["external_id"] == "web-2"


def test_a_failure_is_replayed_too_but_a_validation_error_is_not_stored(
    client: TestClient, admin: Headers, shop: Headers
) -> None:
    seed_catalog(client, admin)
    too_many = order_body(lines=[{"sku": "TEA-1", "quantity": 31}], service_level="next_day")
    first = client.post("/v1/orders", json=too_many, headers=shop | key("k1"))
    assert first.status_code == 409
    client.put("/v1/nodes/ST1/stock", json=[{"sku": "TEA-1", "on_hand": 100}], headers=admin)
    replay = client.post("/v1/orders", json=too_many, headers=shop | key("k1"))
    assert replay.status_code == 409
    assert replay.json() == first.json()
    assert replay.headers["content-type"].startswith("application/problem+json")

    invalid = order_body(lines=[{"sku": "TEA-1", "quantity": 0}])
    assert client.post("/v1/orders", json=invalid, headers=shop | key("k2")).status_code == 422
    assert client.post("/v1/orders", json=order_body(), headers=shop | key("k2")).status_code == 201
    # A refusal found by the service (a sku the catalog lacks) is the request's fault too.
    unknown = order_body("web-2", lines=[{"sku": "TEA-9", "quantity": 1}])
    assert client.post("/v1/orders", json=unknown, headers=shop | key("k3")).status_code == 422
    corrected = client.post("/v1/orders", json=order_body("web-2"), headers=shop | key("k3"))
    assert corrected.status_code == 201, corrected.text
    assert "idempotent-replayed" not in corrected.headers


def test_every_creating_post_takes_a_key(client: TestClient, admin: Headers) -> None:
    product = {"sku": "TEA-1", "name": "Green tea", "weight_kg": 0.3}
    first = client.post("/v1/products", json=product, headers=admin | key("p1"))
    replay = client.post("/v1/products", json=product, headers=admin | key("p1"))
    assert first.status_code == replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"


def test_concurrent_replays_create_exactly_one_order(
    http: httpx.Client, client: TestClient, admin: Headers, shop: Headers
) -> None:
    seed_catalog(client, admin)
    clients = 20
    barrier = threading.Barrier(clients)

    def place(_: int) -> httpx.Response:
        barrier.wait()
        return http.post("/v1/orders", json=order_body(), headers=shop | key("race"))

    with ThreadPoolExecutor(clients) as pool:
        responses = list(pool.map(place, range(clients)))
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum("idempotent-replayed" in r.headers for r in responses) == clients - 1
    assert len(client.get("/v1/orders", headers=shop).json()["items"]) == 1
    assert available(client, admin, "TEA-1", "WH1") == 8
