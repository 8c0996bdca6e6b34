"""Plans: routes and ETAs within windows, stops no van can serve handed on, breaks, vans out of
service or still out on an earlier wave, and the vans' input checked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from fulfill.config import Settings
from fulfill.dispatch import planning, repository, solving
from fulfill.dispatch.models import Van, Wave
from fulfill.inventory.models import Node
from fulfill.orders.models import Fulfillment
from fulfill.outbox.models import OutboxEvent
from tests.dispatch.support import (
    AFTER_CUTOFF,
    CUTOFF_10,
    add_van,
    assert_refused,
    place_orders,
    planned,
    publish_waves_in_turn,
    published,
)

Headers = dict[str, str]


def test_a_plan_shows_routes_etas_within_windows_and_as_geojson(
    seeded: TestClient,
    admin: Headers,
    shop: Headers,
    dispatcher: Headers,
    engine: Engine,
    dispatch_settings: Settings,
) -> None:
    add_van(seeded, admin, "VAN1")
    add_van(seeded, admin, "VAN2")
    orders = place_orders(seeded, shop, 10)
    plan = planned(engine, dispatch_settings)
    body = seeded.get(f"/v1/plans/{plan.id}", headers=dispatcher).json()
    stops = [s for r in body["routes"] for s in r["stops"]]
    assert sorted(s["order"] for s in stops) == sorted(orders) and body["unassigned_stops"] == []
    for stop in stops:
        assert stop["window"]["start"] <= stop["eta"] <= stop["window"]["end"]
    for route in body["routes"]:
        assert route["depart_at"] >= "2026-11-18T17:30:00Z"  # cutoff plus 30 min of loading
        assert [s["position"] for s in route["stops"]] == list(range(len(route["stops"])))
        assert route["load"]["parcels"] == len(route["stops"]) <= route["capacity"]["parcels"]
    assert body["distance_km"] > 0 and body["status"] == "draft" and body["version"] == 1
    geo = seeded.get(f"/v1/plans/{plan.id}/geojson", headers=dispatcher)
    assert geo.headers["content-type"] == "application/geo+json"
    kinds = [f["properties"]["kind"] for f in geo.json()["features"]]
    assert kinds.count("route") == len(body["routes"]) and kinds.count("stop") == 10
    wave = seeded.get(f"/v1/waves/{plan.wave_id}", headers=dispatcher).json()
    assert wave["latest_plan"]["id"] == plan.id and wave["status"] == "closed"
    assert seeded.get(f"/v1/plans/{plan.id}", headers=shop).status_code == 403


def test_stops_no_van_can_serve_move_to_the_next_wave_on_publication(
    seeded: TestClient,
    admin: Headers,
    shop: Headers,
    dispatcher: Headers,
    engine: Engine,
    dispatch_settings: Settings,
    app: FastAPI,
) -> None:
    app.state.settings = dispatch_settings
    add_van(seeded, admin, "TINY", capacity_parcels=2)
    orders = place_orders(seeded, shop, 5)
    app.state.clock = lambda: AFTER_CUTOFF
    plan = published(seeded, dispatcher, engine, dispatch_settings)
    left = [s["order"] for s in plan["unassigned_stops"]]
    assert len(left) == 3 and all(s["reason"] for s in plan["unassigned_stops"])
    with Session(engine) as session:
        waves = session.exec(select(Wave).order_by(Wave.cutoff_at)).all()  # type: ignore[arg-type]
        assert [w.cutoff_at for w in waves] == [CUTOFF_10, CUTOFF_10 + timedelta(hours=3)]
        moved = session.exec(select(Fulfillment).where(Fulfillment.wave_id == waves[1].id)).all()
        assert sorted(f.order_id for f in moved) == sorted(left)
    for order_id in orders:
        timeline = seeded.get(f"/v1/orders/{order_id}", headers=dispatcher).json()["timeline"]
        kinds = [e["kind"] for e in timeline]
        expected = "delivery.moved_to_next_wave" if order_id in left else "delivery.scheduled"
        assert expected in kinds
        if order_id in left:
            moved_event = next(e for e in timeline if e["kind"] == expected)
            assert moved_event["data"]["reason"]


def test_stops_no_van_can_serve_after_the_last_wave_go_to_the_parcel_carrier(
    seeded: TestClient,
    admin: Headers,
    shop: Headers,
    dispatcher: Headers,
    engine: Engine,
    dispatch_settings: Settings,
    app: FastAPI,
) -> None:
    app.state.settings = dispatch_settings
    add_van(seeded, admin, "TINY", capacity_parcels=1)
    last_cutoff = datetime(2026, 11, 18, 23, 0, tzinfo=UTC)  # 16:00 in Edmonton
    app.state.clock = lambda: last_cutoff - timedelta(minutes=30)
    place_orders(seeded, shop, 2)
    after = last_cutoff + timedelta(minutes=1)
    made = planned(engine, dispatch_settings, after)
    app.state.clock = lambda: after  # no wave left today
    response = seeded.post(f"/v1/plans/{made.id}/publish", headers=dispatcher)
    assert response.status_code == 200, response.text
    [left] = response.json()["unassigned_stops"]
    with Session(engine) as session:
        handed = session.get(Fulfillment, left["fulfillment"])
        assert handed is not None and handed.status == "handed_to_carrier"
        asked = session.exec(select(OutboxEvent).where(OutboxEvent.topic == "carrier.create"))
        assert [e.payload["fulfillment"] for e in asked] == [left["fulfillment"]]


def test_van_input_is_checked(seeded: TestClient, admin: Headers) -> None:
    base = {
        "code": "V1",
        "node": "WH1",
        "capacity_parcels": 10,
        "capacity_kg": 100,
        "shift_start": "09:00",
        "shift_end": "17:00",
    }
    cases = [
        ({"shift_end": "08:00"}, 422),
        ({"shift_start": "25:00"}, 422),
        ({"break_start": "12:00"}, 422),
        ({"node": "NOPE"}, 422),
        ({"capacity_parcels": 0}, 422),
    ]
    for change, code in cases:
        response = seeded.post("/v1/vans", json={**base, **change}, headers=admin)
        assert response.status_code == code, (change, response.text)
    assert seeded.post("/v1/vans", json=base, headers=admin).status_code == 201
    assert_refused(seeded.post("/v1/vans", json=base, headers=admin), 409, "conflict")


def test_a_node_without_vans_gets_a_plan_that_hands_its_stops_on(
    seeded: TestClient,
    shop: Headers,
    dispatcher: Headers,
    engine: Engine,
    dispatch_settings: Settings,
    app: FastAPI,
) -> None:
    app.state.settings = dispatch_settings
    orders = place_orders(seeded, shop, 2)
    app.state.clock = lambda: AFTER_CUTOFF
    plan = published(seeded, dispatcher, engine, dispatch_settings)
    assert plan["routes"] == [] and len(plan["unassigned_stops"]) == 2
    assert "no van is free" in plan["unassigned_stops"][0]["reason"]
    timeline = seeded.get(f"/v1/orders/{orders[0]}", headers=dispatcher).json()["timeline"]
    moved = next(e for e in timeline if e["kind"] == "delivery.moved_to_next_wave")
    new, before = moved["data"]["promise"], moved["data"]["promise_before"]
    assert datetime.fromisoformat(new["start"]) == CUTOFF_10 + timedelta(hours=4)  # 13:00 + 1 h
    assert datetime.fromisoformat(before["start"]) == CUTOFF_10 + timedelta(hours=1)


def test_vans_reach_each_door_a_handover_before_the_window_ends(
    seeded: TestClient,
    admin: Headers,
    shop: Headers,
    dispatcher: Headers,
    engine: Engine,
    dispatch_settings: Settings,
) -> None:
    handover = timedelta(minutes=160)  # leaves the first 20 minutes of each 3-hour window
    settings = dispatch_settings.model_copy(update={"dispatch_handover_s": 9600})
    add_van(seeded, admin, "VAN1")
    place_orders(seeded, shop, 8)
    plan = planned(engine, settings)
    body = seeded.get(f"/v1/plans/{plan.id}", headers=dispatcher).json()
    stops = [s for r in body["routes"] for s in r["stops"]]
    assert stops and body["unassigned_stops"]  # more doors than one van reaches that soon
    for stop in stops:
        end = datetime.fromisoformat(stop["window"]["end"])
        assert datetime.fromisoformat(stop["eta"]) + handover <= end


def test_a_van_out_of_service_is_left_out_of_the_plans_made_from_then_on(
    seeded: TestClient,
    admin: Headers,
    shop: Headers,
    dispatcher: Headers,
    engine: Engine,
    dispatch_settings: Settings,
) -> None:
    add_van(seeded, admin, "VAN1")
    add_van(seeded, admin, "VAN2")
    out = seeded.patch("/v1/vans/VAN1", json={"active": False}, headers=dispatcher)
    assert out.status_code == 200 and out.json()["active"] is False
    for body, code in (({"active": "broken"}, 422), ({"active": False, "code": "X"}, 422)):
        assert_refused(
            seeded.patch("/v1/vans/VAN2", json=body, headers=dispatcher), code, "validation"
        )
    assert_refused(
        seeded.patch("/v1/vans/NOPE", json={"active": False}, headers=dispatcher), 404, "not-found"
    )
    assert seeded.patch("/v1/vans/VAN2", json={"active": False}, headers=shop).status_code == 403
    place_orders(seeded, shop, 6)
    plan = planned(engine, dispatch_settings)
    body = seeded.get(f"/v1/plans/{plan.id}", headers=dispatcher).json()
    assert {route["van"] for route in body["routes"]} == {"VAN2"}
    listed = seeded.get("/v1/vans", headers=dispatcher).json()
    assert {v["code"]: v["active"] for v in listed} == {"VAN1": False, "VAN2": True}


def test_a_break_outside_a_vans_hours_for_the_wave_is_taken_outside_them(
    settings: Settings,
) -> None:
    node = Node(
        code="WH1", name="W", kind="warehouse", lat=53.5, lon=-113.5, timezone="America/Edmonton"
    )
    wave = Wave(node_id=1, local_date="2026-11-18", cutoff_at=CUTOFF_10)
    hours: dict[str, Any] = {
        "shift_start": "09:00",
        "shift_end": "19:00",
        "break_start": "12:00",
        "break_end": "13:00",
        "break_minutes": 30,
    }
    van = Van(code="VAN1", node_id=1, capacity_parcels=10, capacity_kg=100, **hours)
    two, five = CUTOFF_10 + timedelta(hours=4), CUTOFF_10 + timedelta(hours=7)  # 14:00, 17:00
    door = repository.Delivery("f1", "o1", 53.55, -113.45, two, five, 1, 1.0)
    local = planning.Clock.of(node, wave.local_date).seconds

    def rest(back_at: datetime) -> Any:
        booked = {"VAN1": repository.Booked(after=back_at)}
        wp = planning.build_problem(node, wave, [door], [van], settings, booked=booked)
        assert wp.problem is not None
        assert not solving._solve(wp, settings).unserved  # the wave stays solvable
        return wp.problem.vehicles[0].rest

    after_lunch = rest(CUTOFF_10 + timedelta(hours=4))  # back at 14:00: the break was before
    assert after_lunch is None
    clipped = rest(CUTOFF_10 + timedelta(hours=2, minutes=10))  # back at 12:10
    assert clipped.window.start == local(CUTOFF_10 + timedelta(hours=2, minutes=10))


def test_a_van_still_out_on_an_earlier_wave_is_planned_from_its_return(
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
    place_orders(seeded, shop, 25)  # the 10:00 wave: a long round
    app.state.clock = lambda: AFTER_CUTOFF
    place_orders(seeded, shop, 3, seed=2)  # the 13:00 wave
    first, second = publish_waves_in_turn(
        seeded,
        dispatcher,
        engine,
        dispatch_settings,
        [AFTER_CUTOFF, CUTOFF_10 + timedelta(hours=3, minutes=1)],
    )
    back = datetime.fromisoformat(first["routes"][0]["return_at"])
    loading = CUTOFF_10 + timedelta(hours=3, minutes=dispatch_settings.dispatch_loading_min)
    assert back > loading  # still out when the second wave's parcels are ready
    leaves = datetime.fromisoformat(second["routes"][0]["depart_at"])
    assert leaves >= back + timedelta(minutes=dispatch_settings.dispatch_reload_min)
