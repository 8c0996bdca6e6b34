"""Same day only while the wave has room: the planner's insertion check of the new door into
the wave's live plan before its cutoff (an empty one before its first order), then into the plan
the vans follow (routes that have not left). Never parcels and kilograms alone."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from fulfill.config import Settings
from fulfill.dispatch.models import LiveStop, Van
from tests.dispatch.support import (
    add_van,
    place_orders,
    published,
)
from tests.support import DOWNTOWN, MORNING, order_body

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
    # No plan yet, and room for 47 more parcels: the live plan says the far door is too far.
    early = same_day(seeded, shop, FAR_NORTH)
    assert not early["available"]
    assert early["details"]["nodes"]["WH1"].startswith("no place on the wave's vans")
    plan = published(seeded, dispatcher, engine, dispatch_settings)
    assert len(plan["routes"]) == 1 and plan["unassigned"] == 0
    assert same_day(seeded, shop, dict(DOWNTOWN))["available"]
    far = same_day(seeded, shop, FAR_NORTH)
    assert not far["available"] and far["problem"] == "service-level-unavailable"
    assert far["details"]["nodes"]["WH1"].startswith("no place on the wave's vans")
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


def test_an_order_no_van_can_reach_in_time_is_refused_before_any_plan_exists(
    seeded: TestClient, admin: Headers, shop: Headers, engine: Engine
) -> None:
    # An empty wave and a van with room for 50 parcels, back by 11:30: the 10:00 wave's window
    # opens at 11:00, and the far door and the drive back do not fit in half an hour.
    add_van(seeded, admin, "VAN1", shift_end="11:30")
    order = order_body("far-1", destination=FAR_NORTH)
    refused = seeded.post("/v1/orders", json=order, headers=shop)
    assert refused.status_code == 409, refused.text
    reason = refused.json()["nodes"]["WH1"]
    assert reason.startswith("no place on the wave's vans"), reason
    assert "capacity" not in reason and "full" not in reason
    near = seeded.post("/v1/orders", json=order_body("near-1"), headers=shop)
    assert near.status_code == 201, near.text
    with Session(engine) as session:
        stop = session.exec(select(LiveStop)).one()
        assert (stop.fulfillment_id, stop.van_code) == (
            near.json()["fulfillments"][0]["id"],
            "VAN1",
        )


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
