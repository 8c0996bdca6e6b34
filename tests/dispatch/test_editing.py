"""A dispatcher's edits and replans: moves checked or forced, locked and started routes kept,
versions that must be the newest, plans made before a van left never published."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from fulfill.config import Settings
from fulfill.dispatch import solving
from fulfill.dispatch.waves import waves_to_plan
from tests.dispatch.support import (
    AFTER_CUTOFF,
    Headers,
    add_van,
    assert_refused,
    place_orders,
    planned,
    two_vans_published,
)
from tests.inventory.test_catalog_api import assert_problem


def test_a_move_that_breaks_the_plan_is_refused_or_forced_with_a_warning(
    seeded: TestClient,
    admin: Headers,
    shop: Headers,
    dispatcher: Headers,
    engine: Engine,
    dispatch_settings: Settings,
    app: FastAPI,
) -> None:
    app.state.settings = dispatch_settings
    add_van(seeded, admin, "VAN1")
    add_van(seeded, admin, "SMALL", capacity_parcels=1)
    place_orders(seeded, shop, 6)
    plan = planned(engine, dispatch_settings)
    body = seeded.get(f"/v1/plans/{plan.id}", headers=dispatcher).json()
    big = next(r for r in body["routes"] if r["van"] == "VAN1")
    small = next((r for r in body["routes"] if r["van"] == "SMALL"), {"stops": []})
    assert len(small["stops"]) <= 1
    stop = big["stops"][-1]["fulfillment"]
    plan_id = plan.id
    refused = seeded.post(
        f"/v1/plans/{plan_id}/moves",
        headers=dispatcher,
        json={"stop": stop, "van": "SMALL", "position": 0},
    )
    if not small["stops"]:  # SMALL is empty and takes one; then it is full
        assert refused.status_code == 201, refused.text
        plan_id = refused.json()["plan"]["id"]
        stop = big["stops"][0]["fulfillment"]
        refused = seeded.post(
            f"/v1/plans/{plan_id}/moves", headers=dispatcher, json={"stop": stop, "van": "SMALL"}
        )
    body = assert_refused(refused, 409, "move-refused")
    assert "over capacity [1, 300]" in body["detail"] and body["reasons"]
    versions = seeded.get(f"/v1/plans/{plan_id}", headers=dispatcher).json()["version"]
    forced = seeded.post(
        f"/v1/plans/{plan_id}/moves",
        headers=dispatcher,
        json={"stop": stop, "van": "SMALL", "force": True},
    )
    assert forced.status_code == 201, forced.text
    result = forced.json()
    assert result["warnings"] and "SMALL" in result["warnings"][0]
    assert result["plan"]["version"] == versions + 1 and result["plan"]["origin"] == "move"
    moved = next(r for r in result["plan"]["routes"] if r["van"] == "SMALL")
    assert stop in [s["fulfillment"] for s in moved["stops"]]
    bad = seeded.post(
        f"/v1/plans/{result['plan']['id']}/moves",
        headers=dispatcher,
        json={"stop": stop, "van": "NOPE"},
    )
    assert_problem(bad, 422)


def test_a_replan_keeps_locked_routes_and_starts_from_the_plan(
    seeded: TestClient,
    admin: Headers,
    shop: Headers,
    dispatcher: Headers,
    engine: Engine,
    dispatch_settings: Settings,
    app: FastAPI,
) -> None:
    sent: list[tuple[str, tuple[object, ...]]] = []
    app.state.send_task = lambda name, *args: sent.append((name, args))
    for code in ("VAN1", "VAN2", "VAN3"):
        add_van(seeded, admin, code, capacity_parcels=6)
    place_orders(seeded, shop, 14)
    plan = planned(engine, dispatch_settings)
    first = seeded.get(f"/v1/plans/{plan.id}", headers=dispatcher).json()
    locked = first["routes"][0]
    response = seeded.post(
        f"/v1/plans/{plan.id}/routes/{locked['van']}/lock",
        json={"locked": True},
        headers=dispatcher,
    )
    assert response.status_code == 200
    asked = seeded.post(f"/v1/waves/{plan.wave_id}/plan", headers=dispatcher)
    assert asked.status_code == 202 and asked.json()["version"] == 2
    assert sent == [("dispatch.plan_wave", (plan.wave_id,))]
    again = solving.plan_wave(engine, plan.wave_id, dispatch_settings, AFTER_CUTOFF)
    assert again is not None and again.version == 2
    second = seeded.get(f"/v1/waves/{plan.wave_id}/plan", headers=dispatcher).json()
    kept = next(r for r in second["routes"] if r["van"] == locked["van"])
    assert kept["locked"] and [s["fulfillment"] for s in kept["stops"]] == [
        s["fulfillment"] for s in locked["stops"]
    ]
    assert second["unassigned"] == 0 and second["cost"] <= first["cost"] * 1.01


def test_moves_need_the_newest_version_and_never_swallow_a_plan_request(
    seeded: TestClient,
    admin: Headers,
    shop: Headers,
    dispatcher: Headers,
    engine: Engine,
    dispatch_settings: Settings,
    app: FastAPI,
) -> None:
    app.state.settings = dispatch_settings
    app.state.send_task = lambda *args: None
    add_van(seeded, admin, "VAN1")
    add_van(seeded, admin, "VAN2")
    place_orders(seeded, shop, 6)
    plan = planned(engine, dispatch_settings)
    body = seeded.get(f"/v1/plans/{plan.id}", headers=dispatcher).json()
    stop = body["routes"][0]["stops"][0]["fulfillment"]
    asked = seeded.post(f"/v1/waves/{plan.wave_id}/plan", headers=dispatcher).json()
    move = {"stop": stop, "van": body["routes"][-1]["van"], "force": True}
    moved = seeded.post(f"/v1/plans/{plan.id}/moves", json=move, headers=dispatcher)
    assert moved.status_code == 201, moved.text
    stale = seeded.post(f"/v1/plans/{plan.id}/moves", json=move, headers=dispatcher)
    assert_refused(stale, 409, "conflict")
    assert_refused(seeded.post(f"/v1/plans/{plan.id}/publish", headers=dispatcher), 409, "conflict")
    with Session(engine) as session:
        assert waves_to_plan(session) == [plan.wave_id]  # the re-plan request still stands
    again = solving.plan_wave(engine, plan.wave_id, dispatch_settings, AFTER_CUTOFF)
    assert again is not None and again.version == 3 and again.request == asked["version"]
    with Session(engine) as session:
        assert waves_to_plan(session) == []  # answered: nothing plans again and again
    assert solving.plan_wave(engine, plan.wave_id, dispatch_settings, AFTER_CUTOFF) is None


def test_a_replan_keeps_a_started_route_and_publishing_it_keeps_the_drivers_progress(
    seeded: TestClient,
    admin: Headers,
    shop: Headers,
    dispatcher: Headers,
    driver: Headers,
    engine: Engine,
    dispatch_settings: Settings,
    app: FastAPI,
) -> None:
    first, orders = two_vans_published(
        seeded, admin, shop, dispatcher, engine, dispatch_settings, app
    )
    app.state.clock = lambda: datetime(2026, 11, 19, tzinfo=UTC)
    route = first["routes"][0]
    start = datetime.fromisoformat(route["depart_at"])
    events = [
        {"id": "s1", "type": "route_started", "van": route["van"], "at": start.isoformat()},
        {
            "id": "d1",
            "type": "delivered",
            "van": route["van"],
            "stop": route["stops"][0]["fulfillment"],
            "at": (start + timedelta(minutes=20)).isoformat(),
        },
    ]
    for event in events:
        assert seeded.post("/v1/driver-events", json=event, headers=driver).status_code == 200
    on_board = route["stops"][1]["order"]
    refused = seeded.post(f"/v1/orders/{on_board}/cancel", json={}, headers=shop)
    assert_refused(refused, 409, "conflict")  # the parcel left with the van
    seeded.post(f"/v1/waves/{first['wave']}/plan", headers=dispatcher)
    second = solving.plan_wave(engine, first["wave"], dispatch_settings, AFTER_CUTOFF)
    assert second is not None and second.status == "draft"  # a dispatcher's re-plan waits
    published_again = seeded.post(f"/v1/plans/{second.id}/publish", headers=dispatcher).json()
    kept = next(r for r in published_again["routes"] if r["van"] == route["van"])
    assert kept["status"] == "started"
    assert [s["fulfillment"] for s in kept["stops"]] == [s["fulfillment"] for s in route["stops"]]
    assert kept["stops"][0]["status"] == "delivered"
    for order_id in orders:
        timeline = seeded.get(f"/v1/orders/{order_id}", headers=dispatcher).json()["timeline"]
        assert [e["kind"] for e in timeline].count("delivery.scheduled") == 1


@pytest.mark.parametrize("locked", [False, True], ids=["free", "locked"])
def test_a_van_that_leaves_while_the_wave_is_planned_again_keeps_its_route(
    seeded: TestClient,
    admin: Headers,
    shop: Headers,
    dispatcher: Headers,
    driver: Headers,
    engine: Engine,
    dispatch_settings: Settings,
    app: FastAPI,
    monkeypatch: pytest.MonkeyPatch,
    locked: bool,
) -> None:
    first, _ = two_vans_published(seeded, admin, shop, dispatcher, engine, dispatch_settings, app)
    app.state.clock = lambda: datetime(2026, 11, 19, tzinfo=UTC)
    route = first["routes"][0]
    if locked:  # a re-plan keeps the route as it was read: at the depot
        lock = f"/v1/plans/{first['id']}/routes/{route['van']}/lock"
        assert seeded.post(lock, json={"locked": True}, headers=dispatcher).status_code == 200
    solve, solves = solving._solve, []

    def leaving_meanwhile(*args: Any) -> Any:
        if not solves:  # the driver sets out while the solver runs
            start = {
                "id": "s1",
                "type": "route_started",
                "van": route["van"],
                "at": route["depart_at"],
            }
            assert seeded.post("/v1/driver-events", json=start, headers=driver).status_code == 200
        solves.append(args)
        return solve(*args)

    monkeypatch.setattr(solving, "_solve", leaving_meanwhile)
    seeded.post(f"/v1/waves/{first['wave']}/plan", headers=dispatcher)
    second = solving.plan_wave(engine, first["wave"], dispatch_settings, AFTER_CUTOFF)
    assert second is not None and len(solves) == 2  # the first solution was stale
    view = seeded.get(f"/v1/plans/{second.id}", headers=dispatcher).json()
    kept = next(r for r in view["routes"] if r["van"] == route["van"])
    assert kept["status"] == "started"
    assert [s["fulfillment"] for s in kept["stops"]] == [s["fulfillment"] for s in route["stops"]]


def test_a_plan_made_before_a_van_left_is_not_published(
    seeded: TestClient,
    admin: Headers,
    shop: Headers,
    dispatcher: Headers,
    driver: Headers,
    engine: Engine,
    dispatch_settings: Settings,
    app: FastAPI,
) -> None:
    first, _ = two_vans_published(seeded, admin, shop, dispatcher, engine, dispatch_settings, app)
    seeded.post(f"/v1/waves/{first['wave']}/plan", headers=dispatcher)
    draft = solving.plan_wave(engine, first["wave"], dispatch_settings, AFTER_CUTOFF)
    assert draft is not None and draft.status == "draft"
    app.state.clock = lambda: datetime(2026, 11, 19, tzinfo=UTC)
    route = first["routes"][0]
    start = {"id": "s1", "type": "route_started", "van": route["van"], "at": route["depart_at"]}
    assert seeded.post("/v1/driver-events", json=start, headers=driver).status_code == 200
    refused = seeded.post(f"/v1/plans/{draft.id}/publish", headers=dispatcher)
    assert route["van"] in assert_refused(refused, 409, "conflict")["detail"]
    wave = seeded.get(f"/v1/waves/{first['wave']}", headers=dispatcher).json()
    assert wave["published_plan"]["id"] == first["id"]  # nothing changed
    seeded.post(f"/v1/waves/{first['wave']}/plan", headers=dispatcher)
    third = solving.plan_wave(engine, first["wave"], dispatch_settings, AFTER_CUTOFF)
    assert third is not None
    published_now = seeded.post(f"/v1/plans/{third.id}/publish", headers=dispatcher)
    assert published_now.status_code == 200, published_now.text
