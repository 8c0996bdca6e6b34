"""Keys and tenancy: a storefront key's orders, shipments and cases are its storefront's."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from fulfill.auth import Scope, create_key, revoke_key
from fulfill.db import utcnow
from fulfill.processes import LiveServer
from tests.support import order_body

Headers = dict[str, str]


def test_keys_of_one_storefront_share_its_orders_and_keys_of_two_never_do(
    seeded: TestClient, make_key: Callable[..., Headers]
) -> None:
    first, second = (make_key(Scope.STOREFRONT, storefront="tea-shop") for _ in range(2))
    elsewhere = make_key(Scope.STOREFRONT, storefront="mug-shop")
    order = seeded.post(
        "/v1/orders", json=order_body(service_level="next_day"), headers=first
    ).json()
    assert seeded.get(f"/v1/orders/{order['id']}", headers=second).status_code == 200
    assert [o["id"] for o in seeded.get("/v1/orders", headers=second).json()["items"]] == [
        order["id"]
    ]
    assert seeded.get(f"/v1/orders/{order['id']}", headers=elsewhere).status_code == 404
    assert seeded.get("/v1/orders", headers=elsewhere).json()["items"] == []
    assert seeded.post(f"/v1/orders/{order['id']}/cancel", headers=elsewhere).status_code == 404
    # The same shop order number in two storefronts is two orders.
    again = seeded.post("/v1/orders", json=order_body(service_level="next_day"), headers=elsewhere)
    assert again.status_code == 201
    assert again.json()["id"] != order["id"]


def test_a_storefront_key_names_its_storefront(
    seeded: TestClient, engine: Engine, make_key: Callable[..., Headers]
) -> None:
    """No default to share by accident (two keys made without ``--name`` once read each other's
    orders): a storefront key is made for a storefront, named as a slug."""
    with Session(engine) as session:
        with pytest.raises(ValueError, match="storefront"):
            create_key(session, [Scope.STOREFRONT])
        with pytest.raises(ValueError, match="slug"):
            create_key(session, [Scope.STOREFRONT], storefront="Tea Shop\r\n")
    one, two = (
        make_key(Scope.STOREFRONT, storefront="one"),
        make_key(Scope.STOREFRONT, storefront="two"),
    )
    a = seeded.post(
        "/v1/orders", json=order_body("web-1", service_level="next_day"), headers=one
    ).json()
    assert seeded.get(f"/v1/orders/{a['id']}", headers=two).status_code == 404


def test_a_revoked_key_is_refused_at_once_by_every_process(
    seeded: TestClient, app: object, engine: Engine, make_key: Callable[..., Headers]
) -> None:
    shop = make_key(Scope.STOREFRONT, storefront="tea-shop")
    with LiveServer(app) as other, httpx.Client(base_url=other.url) as http:
        assert http.get("/v1/orders", headers=shop).status_code == 200
        assert seeded.get("/v1/orders", headers=shop).status_code == 200
        with Session(engine) as session:
            prefix = shop["Authorization"].removeprefix("Bearer ")[:10]
            revoke_key(session, prefix, utcnow())
            session.commit()
        for answered in (
            http.get("/v1/orders", headers=shop),
            seeded.get("/v1/orders", headers=shop),
        ):
            assert answered.status_code == 401
            assert answered.json()["detail"] == "the API key is unknown or revoked"
