"""Same day only while the wave has room: the vans' capacity, then the planner's insertion check
of the new door into the wave's current plan (routes that have not left)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from fulfill.config import Settings
from fulfill.dispatch.models import Van
from tests.dispatch.support import (
    add_van,
    place_orders,
    published,
)
from tests.support import DOWNTOWN, MORNING

Headers = dict[str, str]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The room check on, as it is by default (the other dispatch tests turn it off)."""
    return settings.model_copy(update={"same_day_room_check": True})


FAR_NORTH = {"lat": 53.76, "lon": -113.49}  # 24 km out: inside WH1's 30 km, but a long drive


def same_day(client: TestClient, shop: Headers, door: dict[str, float]) -> dict[str, Any]:
    body = {
        "destination": door,
        "lines": [{"sku": "TEA-1", "quantity": 1}],
        "service_levels": ["same_day"],
        "at": MORNING.isoformat(),
    }
    response = client.post("/v1/promises", json=body, headers=shop)
    assert response.status_code == 200, response.text
    return dict(response.json()["options"][0])


def test_a_door_the_planned_routes_cannot_reach_in_time_is_not_offered_same_day(
    seeded: TestClient,
    admin: Headers,
    shop: Headers,
    dispatcher: Headers,
    driver: Headers,
    engine: Engine,
    dispatch_settings: Settings,
    app: FastAPI,
) -> None:
    # One van that must be back by 12:00: the 10:00 wave's downtown doors fit, a far one not.
    add_van(seeded, admin, "VAN1", shift_end="12:00")
    place_orders(seeded, shop, 3)
    assert same_day(seeded, shop, FAR_NORTH)["available"]  # no plan yet: capacity only
    plan = published(seeded, dispatcher, engine, dispatch_settings)
    assert len(plan["routes"]) == 1 and plan["unassigned"] == 0
    assert same_day(seeded, shop, dict(DOWNTOWN))["available"]
    far = same_day(seeded, shop, FAR_NORTH)
    assert not far["available"] and far["problem"] == "service-level-unavailable"
    assert far["details"]["nodes"]["WH1"].startswith("no van of the wave can reach it in time")
    # Once the van has left, nothing more joins its wave, however near.
    app.state.clock = lambda: datetime.fromisoformat(plan["routes"][0]["depart_at"])
    started = {
        "id": "r1",
        "type": "route_started",
        "van": "VAN1",
        "at": plan["routes"][0]["depart_at"],
        "lat": 53.546,
        "lon": -113.494,
    }
    assert seeded.post("/v1/driver-events", json=started, headers=driver).status_code == 200
    near = same_day(seeded, shop, dict(DOWNTOWN))
    assert near["details"]["nodes"]["WH1"] == "every van of the wave has left"


def test_a_van_taken_out_of_service_after_planning_is_left_out_of_the_check(
    seeded: TestClient,
    admin: Headers,
    shop: Headers,
    dispatcher: Headers,
    engine: Engine,
    dispatch_settings: Settings,
) -> None:
    for code in ("VAN1", "VAN2"):
        add_van(seeded, admin, code, capacity_parcels=3)
    place_orders(seeded, shop, 5)
    plan = published(seeded, dispatcher, engine, dispatch_settings)
    assert {r["van"] for r in plan["routes"]} == {"VAN1", "VAN2"}
    with Session(engine) as session:
        van = session.exec(select(Van).where(Van.code == "VAN2")).one()
        van.active = False
        session.add(van)
        session.commit()
    add_van(seeded, admin, "VAN3")  # idle, not in the plan
    # VAN2's planned route has no van now; VAN3 can take the door on a trip of its own.
    assert same_day(seeded, shop, dict(DOWNTOWN))["available"]
