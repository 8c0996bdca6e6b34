"""Orders shipped by the third party (Amazon MCF, here its sandbox over real HTTP): created once
through the outbox whatever is replayed, an outage costs nothing, a refusal is shipped from
elsewhere, and its stock and shipments come back by the sync."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from fulfill.config import Settings
from fulfill.fulfillers.models import ThirdPartyOrder
from fulfill.fulfillers.tasks import sync_all
from fulfill.outbox.models import OutboxEvent, OutboxStatus
from fulfill.processes import LiveServer
from fulfill.wiring import outbox_handlers
from fulfill_carriers.sandboxes import McfSandboxState as SandboxState
from fulfill_carriers.sandboxes import mcf_sandbox_app as sandbox_app
from tests.support import available, order_body, relay_now, seed_catalog

Headers = dict[str, str]
ADDRESS = {
    "line1": "10220 103 Ave NW",
    "city": "Edmonton",
    "postal_code": "T5J 0K4",
    "region": "AB",
    "country": "CA",
}
HOME = {"lat": 53.5436, "lon": -113.4923, "address": ADDRESS}


@pytest.fixture
def sandbox() -> Iterator[tuple[str, SandboxState]]:
    state = SandboxState()
    with LiveServer(sandbox_app(state)) as server:
        yield server.url, state


@pytest.fixture
def tp_settings(settings: Settings, sandbox: tuple[str, SandboxState]) -> Settings:
    return settings.model_copy(update={"mcf_url": sandbox[0], "mcf_marketplace_id": "M"})


@pytest.fixture
def seeded(
    client: TestClient,
    admin: Headers,
    app: FastAPI,
    tp_settings: Settings,
    sandbox: tuple[str, SandboxState],
) -> TestClient:
    """The usual catalog, a book only the third party (FBA in Calgary) holds: 10 there, 10 in
    its sandbox."""
    app.state.settings = tp_settings
    seed_catalog(client, admin)
    book = {"sku": "BOOK-1", "name": "Atlas", "weight_kg": 1.2}
    assert client.post("/v1/products", json=book, headers=admin).status_code == 201
    node = {
        "code": "FBA1",
        "name": "FBA Calgary",
        "kind": "third_party",
        "lat": 51.05,
        "lon": -114.07,
        "timezone": "America/Edmonton",
    }
    assert client.post("/v1/nodes", json=node, headers=admin).status_code == 201
    body = [{"sku": "BOOK-1", "on_hand": 10}]
    assert client.put("/v1/nodes/FBA1/stock", json=body, headers=admin).status_code == 200
    url, _ = sandbox
    httpx.post(
        f"{url}/fba/inventory/v1/items/inventory",
        headers={"x-amzn-idempotency-token": "a"},
        json={"inventoryItems": [{"sellerSku": "BOOK-1", "marketplaceId": "M", "quantity": 10}]},
    )
    return client


def book_order(external_id: str = "web-1", quantity: int = 2) -> dict[str, Any]:
    return order_body(
        external_id,
        destination=HOME,
        service_level="next_day",
        lines=[{"sku": "BOOK-1", "quantity": quantity}],
    )


def events(engine: Engine, topic: str) -> list[OutboxEvent]:
    with Session(engine) as session:
        return list(session.exec(select(OutboxEvent).where(OutboxEvent.topic == topic)).all())


def timeline(client: TestClient, shop: Headers, order_id: str) -> list[str]:
    return [
        e["kind"] for e in client.get(f"/v1/orders/{order_id}", headers=shop).json()["timeline"]
    ]


def test_an_order_sourced_at_the_third_party_is_created_there_once_whatever_is_replayed(
    seeded: TestClient,
    shop: Headers,
    admin: Headers,
    engine: Engine,
    tp_settings: Settings,
    sandbox: tuple[str, SandboxState],
) -> None:
    _, state = sandbox
    response = seeded.post("/v1/orders", json=book_order(), headers=shop)
    assert response.status_code == 201, response.text
    order = response.json()
    assert [f["node"] for f in order["fulfillments"]] == ["FBA1"]
    assert order["sourcing"]["shipments"][0]["node"] == "FBA1"
    assert available(seeded, admin, "BOOK-1", "FBA1") == 8
    assert state.creates == 0  # only once the transaction committed, through the outbox

    relay_now(engine, tp_settings)
    fulfillment = order["fulfillments"][0]["id"]
    assert list(state.orders) == [fulfillment] and state.creates == 1
    assert state.orders[fulfillment].request["shippingSpeedCategory"] == "Priority"
    assert "fulfillment.sent_to_third_party" in timeline(seeded, shop, order["id"])

    # A worker that died after the call but before recording it: the event runs again.
    with Session(engine) as session:
        session.execute(update(OutboxEvent).values(status=OutboxStatus.PENDING))
        session.execute(update(ThirdPartyOrder).values(status="requested"))
        session.commit()
    relay_now(engine, tp_settings)
    handler = outbox_handlers(tp_settings)["third_party.create"][0]
    handler(events(engine, "third_party.create")[0])  # and a duplicate delivery on top
    assert state.creates == 1 and len(state.orders) == 1


def test_an_outage_loses_nothing_and_sourcing_avoids_the_third_party_meanwhile(
    seeded: TestClient,
    shop: Headers,
    admin: Headers,
    engine: Engine,
    tp_settings: Settings,
    sandbox: tuple[str, SandboxState],
) -> None:
    _, state = sandbox
    state.down = True
    first = seeded.post("/v1/orders", json=book_order("web-1"), headers=shop)
    assert first.status_code == 201  # accepted: its stock here says the third party has it
    relay_now(engine, tp_settings)
    [event] = events(engine, "third_party.create")
    assert event.status == OutboxStatus.PENDING and "503" in (event.last_error or "")

    # While it is down, a book is clearly refused (no one else has it) ...
    refused = seeded.post("/v1/orders", json=book_order("web-2"), headers=shop)
    assert refused.status_code == 409
    assert "not answering" in refused.json()["nodes"]["FBA1"]
    # ... and a tea goes to an own node as usual.
    tea = order_body("web-3", destination=HOME, service_level="next_day")
    assert seeded.post("/v1/orders", json=tea, headers=shop).status_code == 201

    state.down = False
    relay_now(engine, tp_settings)
    assert events(engine, "third_party.create")[0].status == OutboxStatus.SENT
    assert list(state.orders) == [first.json()["fulfillments"][0]["id"]]
    promise = seeded.post(
        "/v1/promises",
        json={"destination": HOME, "lines": [{"sku": "BOOK-1", "quantity": 1}]},
        headers=shop,
    ).json()
    next_day = next(o for o in promise["options"] if o["service_level"] == "next_day")
    assert next_day["available"] and next_day["nodes"] == ["FBA1"]


def test_an_order_the_third_party_refuses_ships_from_an_own_node_instead(
    seeded: TestClient,
    shop: Headers,
    admin: Headers,
    engine: Engine,
    tp_settings: Settings,
    sandbox: tuple[str, SandboxState],
) -> None:
    _, state = sandbox
    state.inventory["BOOK-1"] = 0  # sold elsewhere since the last sync
    body = [{"sku": "BOOK-1", "on_hand": 3}]
    assert seeded.put("/v1/nodes/ST1/stock", json=body, headers=admin).status_code == 200
    # Cheaper at the third party (no store handling), so it goes there first.
    order = seeded.post("/v1/orders", json=book_order(), headers=shop).json()
    assert [f["node"] for f in order["fulfillments"]] == ["FBA1"]
    relay_now(engine, tp_settings)
    detail = seeded.get(f"/v1/orders/{order['id']}", headers=shop).json()
    statuses = {f["node"]: f["status"] for f in detail["fulfillments"]}
    assert statuses == {"FBA1": "failed", "ST1": "pending"}
    kinds = [e["kind"] for e in detail["timeline"] if not e["kind"].startswith("notice.")]
    assert kinds[-2:] == ["fulfillment.refused_by_third_party", "fulfillment.re_sourced"]
    assert available(seeded, admin, "BOOK-1", "FBA1") == 10  # given back
    assert available(seeded, admin, "BOOK-1", "ST1") == 1
    assert state.creates == 0


def test_the_sync_reads_its_stock_and_ships_and_a_cancel_reaches_it(
    seeded: TestClient,
    shop: Headers,
    admin: Headers,
    engine: Engine,
    tp_settings: Settings,
    sandbox: tuple[str, SandboxState],
) -> None:
    url, state = sandbox
    shipped = seeded.post("/v1/orders", json=book_order("web-1", 2), headers=shop).json()
    cancelled = seeded.post("/v1/orders", json=book_order("web-2", 1), headers=shop).json()
    relay_now(engine, tp_settings)
    state.inventory["BOOK-1"] += 5  # an inbound shipment arrived there
    assert sync_all(engine, tp_settings)["stock"] == 1
    # 10 + 5 there, less 3 for our two orders, which it holds already: 12 free here too.
    assert available(seeded, admin, "BOOK-1", "FBA1") == 12

    cancel = seeded.post(f"/v1/orders/{cancelled['id']}/cancel", json={}, headers=shop)
    assert cancel.status_code == 200, cancel.text
    relay_now(engine, tp_settings)
    assert state.orders[cancelled["fulfillments"][0]["id"]].status == "Cancelled"

    seller_id = shipped["fulfillments"][0]["id"]
    httpx.put(
        f"{url}/fba/outbound/2020-07-01/fulfillmentOrders/{seller_id}/status",
        json={"fulfillmentOrderStatus": "Complete"},
    )
    assert sync_all(engine, tp_settings)["orders"] == 1
    detail = seeded.get(f"/v1/orders/{shipped['id']}", headers=shop).json()
    assert detail["fulfillments"][0]["status"] == "handed_to_carrier"
    handed = next(e for e in detail["timeline"] if e["kind"] == "fulfillment.handed_to_carrier")
    assert handed["data"]["packages"][0]["tracking_number"].startswith("TBC")
    assert available(seeded, admin, "BOOK-1", "FBA1") == 13  # the 2 shipped left both counts
    rows = seeded.get("/v1/stock", params={"sku": "BOOK-1", "node": "FBA1"}, headers=admin).json()
    assert (rows[0]["on_hand"], rows[0]["reserved"]) == (13, 0)
    with Session(engine) as session:
        assert (
            session.exec(select(ThirdPartyOrder).where(col(ThirdPartyOrder.status) == "shipped"))
            .one()
            .seller_order_id
            == seller_id
        )
