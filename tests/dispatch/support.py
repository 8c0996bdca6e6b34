"""What the dispatch tests share: vans added and orders placed through the API, the wave they make,
and its plan made and published."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from fulfill.config import Settings
from fulfill.dispatch import solving
from fulfill.dispatch.models import Plan, Wave
from fulfill.dispatch.waves import close_due_waves
from tests.inventory.test_catalog_api import assert_problem
from tests.support import DOWNTOWN, order_body

Headers = dict[str, str]
CUTOFF_10 = datetime(2026, 11, 18, 17, 0, tzinfo=UTC)  # 10:00 in Edmonton (UTC-7)


AFTER_CUTOFF = CUTOFF_10 + timedelta(minutes=1)


def assert_refused(response: Any, status: int, code: str) -> dict[str, Any]:
    body = assert_problem(response, status)
    assert body["type"].endswith("/" + code), body
    return body


def add_van(client: TestClient, admin: Headers, code: str, **overrides: Any) -> dict[str, Any]:
    body = {
        "code": code,
        "node": "WH1",
        "capacity_parcels": 40,
        "capacity_kg": 300,
        "shift_start": "09:00",
        "shift_end": "19:00",
        **overrides,
    }
    response = client.post("/v1/vans", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return dict(response.json())


def place_orders(client: TestClient, shop: Headers, count: int, seed: int = 1) -> list[str]:
    rng = np.random.default_rng(seed)
    ids = []
    for k in range(count):
        where = {
            "lat": DOWNTOWN["lat"] + float(rng.uniform(-0.05, 0.05)),
            "lon": DOWNTOWN["lon"] + float(rng.uniform(-0.08, 0.08)),
        }
        body = order_body(f"web-{seed}-{k}", destination=where)
        response = client.post("/v1/orders", json=body, headers=shop)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def the_wave(engine: Engine) -> Wave:
    with Session(engine) as session:
        waves = session.exec(select(Wave)).all()
    assert len(waves) == 1
    return waves[0]


def planned(engine: Engine, settings: Settings, now: datetime = AFTER_CUTOFF) -> Plan:
    wave = the_wave(engine)
    with Session(engine) as session:
        if wave.status == "open":
            assert close_due_waves(session, now) == [wave.id]
        session.commit()
    plan = solving.plan_wave(engine, wave.id, settings, now)  # type: ignore[arg-type]
    assert plan is not None
    return plan


def published(
    client: TestClient, dispatcher: Headers, engine: Engine, settings: Settings
) -> dict[str, Any]:
    plan = planned(engine, settings)
    response = client.post(f"/v1/plans/{plan.id}/publish", headers=dispatcher)
    assert response.status_code == 200, response.text
    return dict(response.json())


def van1_published(
    client: TestClient,
    admin: Headers,
    shop: Headers,
    dispatcher: Headers,
    engine: Engine,
    settings: Settings,
    app: FastAPI,
    orders: int,
) -> dict[str, Any]:
    """The published plan of one van, VAN1, for ``orders`` orders; the app on ``settings``."""
    app.state.settings = settings
    add_van(client, admin, "VAN1")
    place_orders(client, shop, orders)
    return published(client, dispatcher, engine, settings)


def two_vans_published(
    client: TestClient,
    admin: Headers,
    shop: Headers,
    dispatcher: Headers,
    engine: Engine,
    settings: Settings,
    app: FastAPI,
) -> tuple[dict[str, Any], list[str]]:
    """The published plan of two small vans for six orders, and the orders; no tasks sent."""
    app.state.settings = settings
    app.state.send_task = lambda *args: None
    add_van(client, admin, "VAN1", capacity_parcels=4)
    add_van(client, admin, "VAN2", capacity_parcels=4)
    orders = place_orders(client, shop, 6)
    return published(client, dispatcher, engine, settings), orders


def publish_waves_in_turn(
    client: TestClient,
    dispatcher: Headers,
    engine: Engine,
    settings: Settings,
    closings: list[datetime],
) -> list[dict[str, Any]]:
    """Close, plan and publish the wave due at each of ``closings``, in turn."""
    plans = []
    for closing in closings:
        with Session(engine) as session:
            (wave_id,) = close_due_waves(session, closing)
            session.commit()
        plan = solving.plan_wave(engine, wave_id, settings, closing)
        assert plan is not None
        response = client.post(f"/v1/plans/{plan.id}/publish", headers=dispatcher)
        assert response.status_code == 200, response.text
        plans.append(response.json())
    return plans
