"""Waves, plans, dispatcher moves and driver events, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from fulfill.config import Settings
from fulfill.dispatch import planning, repository, silence, solving
from fulfill.dispatch.models import DriverEvent, Plan, PlanRoute, Van, Wave
from fulfill.dispatch.planning import Clock
from fulfill.dispatch.waves import close_due_waves, wave_for, waves_to_plan
from fulfill.inventory.models import Node
from fulfill.orders.models import Fulfillment
from fulfill.outbox.models import OutboxEvent
from fulfill.tracking.models import Shipment, TrackingAlert
from tests.inventory.test_catalog_api import assert_problem
from tests.support import DOWNTOWN, MORNING, order_body

Headers = dict[str, str]
CUTOFF_10 = datetime(2026, 11, 18, 17, 0, tzinfo=UTC)  # 10:00 in Edmonton (UTC-7)
AFTER_CUTOFF = CUTOFF_10 + timedelta(minutes=1)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """These tests make waves overflow on purpose (orders before vans, small vans), to see what
    dispatch does with stops no van can take; sourcing would otherwise refuse them same day."""
    return settings.model_copy(update={"same_day_room_check": False})


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


def test_same_day_orders_join_the_wave_of_their_cutoff(
    seeded: TestClient, app: FastAPI, shop: Headers, dispatcher: Headers, engine: Engine
) -> None:
    place_orders(seeded, shop, 3)
    app.state.clock = lambda: CUTOFF_10 + timedelta(minutes=5)  # after 10:00: the 13:00 wave
    place_orders(seeded, shop, 2, seed=2)
    seeded.post("/v1/orders", json=order_body("next-1", service_level="next_day"), headers=shop)
    waves = seeded.get("/v1/waves", params={"node": "WH1"}, headers=dispatcher).json()
    assert [(w["cutoff_at"], w["local_date"], w["fulfillments"], w["status"]) for w in waves] == [
        ("2026-11-18T20:00:00Z", "2026-11-18", 2, "open"),
        ("2026-11-18T17:00:00Z", "2026-11-18", 3, "open"),
    ]


def test_cutoffs_follow_each_nodes_timezone_and_daylight_saving(engine: Engine) -> None:
    common = {"kind": "store", "same_day_radius_km": 10, "wave_cutoffs": ["10:00"]}
    tokyo = Node(code="TYO", name="Tokyo", lat=35.68, lon=139.76, timezone="Asia/Tokyo", **common)
    edmonton = Node(
        code="YEG", name="Edmonton", lat=53.5, lon=-113.5, timezone="America/Edmonton", **common
    )
    with Session(engine) as session:
        session.add_all([tokyo, edmonton])
        session.flush()
        # 10:00 in Tokyo on 19 Nov is 01:00 UTC; in Edmonton, 10:00 on 8 Mar 2026 (the day
        # clocks go forward) is 16:00 UTC, on 7 Mar 17:00 UTC.
        in_tokyo = wave_for(session, tokyo, datetime(2026, 11, 19, 1, 0, tzinfo=UTC))
        before_dst = wave_for(session, edmonton, datetime(2026, 3, 7, 17, 0, tzinfo=UTC))
        after_dst = wave_for(session, edmonton, datetime(2026, 3, 8, 16, 0, tzinfo=UTC))
        session.commit()
        assert in_tokyo.local_date == "2026-11-19"
        assert (before_dst.local_date, after_dst.local_date) == ("2026-03-07", "2026-03-08")
        assert close_due_waves(session, datetime(2026, 3, 8, 15, 59, tzinfo=UTC)) == [before_dst.id]
        assert close_due_waves(session, datetime(2026, 3, 8, 16, 0, tzinfo=UTC)) == [after_dst.id]
        assert close_due_waves(session, datetime(2026, 11, 19, 1, 0, tzinfo=UTC)) == [in_tokyo.id]
        assert close_due_waves(session, datetime(2026, 11, 20, tzinfo=UTC)) == []


def test_a_wave_is_planned_once_per_version_whatever_the_retries(
    seeded: TestClient, admin: Headers, shop: Headers, engine: Engine, dispatch_settings: Settings
) -> None:
    for code in ("VAN1", "VAN2"):
        add_van(seeded, admin, code)
    place_orders(seeded, shop, 12)
    wave = the_wave(engine)
    with Session(engine) as session:
        close_due_waves(session, AFTER_CUTOFF)
        session.commit()
    results: list[Plan | Exception | None] = []

    def work() -> None:
        try:
            results.append(solving.plan_wave(engine, wave.id, dispatch_settings, AFTER_CUTOFF))  # type: ignore[arg-type]
        except Exception as exc:
            results.append(exc)

    workers = [threading.Thread(target=work) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    again = solving.plan_wave(engine, wave.id, dispatch_settings, AFTER_CUTOFF)  # type: ignore[arg-type]
    assert not [r for r in results if isinstance(r, Exception)]
    assert again is None and sum(r is not None for r in results) == 1
    with Session(engine) as session:
        plans = session.exec(select(Plan)).all()
        assert [(p.version, p.stops, p.unassigned) for p in plans] == [(1, 12, 0)]
        assert session.get(Wave, wave.id).planned_version == 1  # type: ignore[union-attr]


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


def test_driver_events_move_stops_on_and_late_etas_are_flagged_at_once(
    seeded: TestClient,
    admin: Headers,
    shop: Headers,
    dispatcher: Headers,
    driver: Headers,
    engine: Engine,
    dispatch_settings: Settings,
    app: FastAPI,
) -> None:
    plan = van1_published(seeded, admin, shop, dispatcher, engine, dispatch_settings, app, 5)
    app.state.clock = lambda: datetime(2026, 11, 19, tzinfo=UTC)  # the day is over by then
    route = plan["routes"][0]
    first, second = route["stops"][0], route["stops"][1]

    def event(n: str, kind: str, at: datetime, **more: Any) -> Any:
        body = {"id": n, "type": kind, "van": "VAN1", "at": at.isoformat(), **more}
        return seeded.post("/v1/driver-events", json=body, headers=driver)

    start = datetime.fromisoformat(route["depart_at"])
    assert event("e1", "route_started", start, lat=53.546, lon=-113.494).status_code == 200
    done_at = datetime.fromisoformat(first["eta"]) + timedelta(minutes=2)
    delivered = event(
        "e2", "delivered", done_at, stop=first["fulfillment"], proof={"signed_by": "Ada"}
    )
    assert delivered.status_code == 200 and delivered.json() == {
        "id": "e2",
        "replayed": False,
        "late": [],
        "wave": plan["wave"],
    }
    # Stuck in traffic far away, four hours later: every stop ahead is now late.
    stuck = start + timedelta(hours=4)
    late = event("e3", "position", stuck, lat=53.30, lon=-113.90)
    assert late.status_code == 200 and set(late.json()["late"]) == {
        s["fulfillment"] for s in route["stops"][1:]
    }
    replay = event("e3", "position", stuck, lat=53.30, lon=-113.90)
    assert replay.json() == {"id": "e3", "replayed": True, "late": [], "wave": plan["wave"]}
    now_plan = seeded.get(f"/v1/plans/{plan['id']}", headers=dispatcher).json()
    stops = now_plan["routes"][0]["stops"]
    assert stops[0]["status"] == "delivered" and all(s["late"] for s in stops[1:])
    assert all(s["eta"] > s["window"]["end"] for s in stops[1:])
    assert now_plan["routes"][0]["last_position"]["lat"] == 53.30
    order = seeded.get(f"/v1/orders/{second['order']}", headers=dispatcher).json()
    kinds = [e["kind"] for e in order["timeline"]]
    assert kinds.count("delivery.late_predicted") == 1 and "delivery.scheduled" in kinds
    first_order = seeded.get(f"/v1/orders/{first['order']}", headers=dispatcher).json()
    assert "delivery.delivered" in [e["kind"] for e in first_order["timeline"]]
    again = event("e4", "delivered", stuck, stop=first["fulfillment"])
    assert_refused(again, 409, "conflict")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "delivered"}, "body"),  # no stop
        ({"type": "teleported"}, "type"),
        ({"type": "position", "lat": 53.5}, "body"),  # lat without lon
        ({"type": "failed", "stop": "x"}, "body"),  # no reason
        ({"type": "route_started", "at": "2026-11-18T18:00:00"}, "at"),  # no timezone
    ],
)
def test_malformed_driver_events_are_refused_and_change_nothing(
    seeded: TestClient, driver: Headers, engine: Engine, body: dict[str, Any], field: str
) -> None:
    event = {"id": "bad", "van": "VAN1", "at": "2026-11-18T18:00:00Z", **body}
    response = seeded.post("/v1/driver-events", json=event, headers=driver)
    assert_refused(response, 422, "validation")
    assert response.json()["errors"][0]["field"] == field
    with Session(engine) as session:
        assert session.exec(select(DriverEvent)).all() == []


def test_an_event_for_a_van_without_a_published_route_is_a_404(
    seeded: TestClient, driver: Headers, shop: Headers
) -> None:
    body = {"id": "x1", "type": "route_started", "van": "VAN9", "at": "2026-11-18T15:00:00Z"}
    assert_refused(seeded.post("/v1/driver-events", json=body, headers=driver), 404, "not-found")
    assert seeded.post("/v1/driver-events", json=body, headers=shop).status_code == 403


def test_a_route_left_planned_on_an_earlier_day_is_not_the_next_one(
    seeded: TestClient,
    admin: Headers,
    shop: Headers,
    dispatcher: Headers,
    driver: Headers,
    engine: Engine,
    dispatch_settings: Settings,
    app: FastAPI,
) -> None:
    plan = van1_published(seeded, admin, shop, dispatcher, engine, dispatch_settings, app, 2)
    two_days_on = datetime.fromisoformat(plan["routes"][0]["depart_at"]) + timedelta(days=2)
    app.state.clock = lambda: two_days_on
    body = {"id": "x1", "type": "route_started", "van": "VAN1", "at": two_days_on.isoformat()}
    assert_refused(seeded.post("/v1/driver-events", json=body, headers=driver), 404, "not-found")
    now = seeded.get(f"/v1/plans/{plan['id']}", headers=dispatcher).json()["routes"][0]
    assert now["status"] == "planned"


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


def test_times_stay_exact_across_a_daylight_saving_change() -> None:
    berlin = Node(
        code="BER",
        name="Berlin",
        kind="store",
        lat=52.5,
        lon=13.4,
        timezone="Europe/Berlin",
        wave_cutoffs=["10:00"],
    )
    clock = Clock.of(berlin, "2026-03-29")  # clocks go forward at 02:00
    noon = datetime(2026, 3, 29, 10, 0, tzinfo=UTC)  # 12:00 in Berlin (UTC+2 from 02:00)
    assert clock.local("12:00") == clock.seconds(noon) == 11 * 3600  # 23 hours that day
    assert clock.at(clock.local("12:00")) == noon


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


def test_an_order_that_joins_a_planned_wave_asks_for_a_new_plan(
    seeded: TestClient,
    admin: Headers,
    shop: Headers,
    engine: Engine,
    dispatch_settings: Settings,
    app: FastAPI,
) -> None:
    add_van(seeded, admin, "VAN1")
    place_orders(seeded, shop, 2)
    planned(engine, dispatch_settings)
    place_orders(seeded, shop, 1, seed=9)  # placed at 08:30 by the app's clock: same wave
    with Session(engine) as session:
        wave = session.exec(select(Wave)).one()
        assert (wave.version, wave.planned_version, wave.requested_by) == (2, 1, "order")


def test_a_report_from_a_clock_in_the_future_is_refused(
    seeded: TestClient,
    admin: Headers,
    shop: Headers,
    dispatcher: Headers,
    driver: Headers,
    engine: Engine,
    dispatch_settings: Settings,
) -> None:
    add_van(seeded, admin, "VAN1")
    place_orders(seeded, shop, 2)
    published(seeded, dispatcher, engine, dispatch_settings)
    event = {
        "id": "f1",
        "type": "position",
        "van": "VAN1",
        "lat": 53.5,
        "lon": -113.5,
        "at": (MORNING + timedelta(hours=1)).isoformat(),
    }
    response = seeded.post("/v1/driver-events", json=event, headers=driver)
    assert_refused(response, 422, "unprocessable")
    assert response.json()["errors"][0]["field"] == "at"


def test_a_silent_van_lets_its_etas_slip_and_warns_before_the_windows_end(
    seeded: TestClient,
    admin: Headers,
    shop: Headers,
    dispatcher: Headers,
    driver: Headers,
    engine: Engine,
    dispatch_settings: Settings,
    app: FastAPI,
) -> None:
    plan = van1_published(seeded, admin, shop, dispatcher, engine, dispatch_settings, app, 5)
    route = plan["routes"][0]
    first, last = route["stops"][0], route["stops"][-1]
    start = datetime.fromisoformat(route["depart_at"])
    heard_at = datetime.fromisoformat(first["eta"]) + timedelta(minutes=2)
    app.state.clock = lambda: heard_at
    for n, kind, at, more in (
        ("e1", "route_started", start, {}),
        ("e2", "delivered", heard_at, {"stop": first["fulfillment"]}),
    ):
        body = {"id": n, "type": kind, "van": "VAN1", "at": at.isoformat(), **more}
        assert seeded.post("/v1/driver-events", json=body, headers=driver).status_code == 200
    # Then nothing: the van broke down at its first door.

    def sweep(now: datetime) -> list[str]:
        with Session(engine) as session:
            late = silence.watch_silent_vans(session, dispatch_settings, now)
            session.commit()
        return late

    def etas() -> list[str]:
        stops = seeded.get(f"/v1/plans/{plan['id']}", headers=dispatcher).json()
        return [s["eta"] for s in stops["routes"][0]["stops"][1:]]

    before = etas()
    silent = timedelta(seconds=dispatch_settings.dispatch_silent_van_s)
    assert sweep(heard_at + silent - timedelta(minutes=1)) == []  # not silent long enough yet
    assert etas() == before
    window_end = datetime.fromisoformat(last["window"]["end"])
    # Silent for hours by then: it is expected to stand as long again, past the last window.
    late = sweep(window_end - timedelta(minutes=60))
    assert last["fulfillment"] in late and first["fulfillment"] not in late
    assert all(now > then for now, then in zip(etas(), before, strict=True))
    with Session(engine) as session:
        shipment = session.exec(
            select(Shipment).where(Shipment.fulfillment_id == last["fulfillment"])
        ).one()
        alerts = session.exec(
            select(TrackingAlert).where(TrackingAlert.shipment_id == shipment.id)
        ).all()
    assert shipment.late and [a.kind for a in alerts] == ["late"]
    assert all(a.detected_at < window_end for a in alerts)
    assert last["fulfillment"] not in sweep(window_end - timedelta(minutes=50))  # once is enough


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


def test_tracking_is_told_when_each_parcel_will_be_in_hand(
    seeded: TestClient,
    admin: Headers,
    shop: Headers,
    dispatcher: Headers,
    driver: Headers,
    engine: Engine,
    dispatch_settings: Settings,
    app: FastAPI,
) -> None:
    settings = dispatch_settings.model_copy(update={"dispatch_handover_s": 600})
    plan = van1_published(seeded, admin, shop, dispatcher, engine, settings, app, 4)
    handover = timedelta(seconds=600)

    def told() -> dict[str, datetime | None]:
        with Session(engine) as session:
            return {s.tracking_number: s.eta for s in session.exec(select(Shipment)).all()}

    def in_hand(stops: list[dict[str, Any]]) -> dict[str, datetime | None]:
        return {s["fulfillment"]: datetime.fromisoformat(s["eta"]) + handover for s in stops}

    assert told() == in_hand(plan["routes"][0]["stops"])
    depart = plan["routes"][0]["depart_at"]
    app.state.clock = lambda: datetime.fromisoformat(depart)
    start = {"id": "s1", "type": "route_started", "van": "VAN1", "at": depart}
    assert seeded.post("/v1/driver-events", json=start, headers=driver).status_code == 200
    now = seeded.get(f"/v1/plans/{plan['id']}", headers=dispatcher).json()["routes"][0]["stops"]
    assert told() == in_hand(now)


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


def test_a_van_slower_than_the_travel_model_stretches_the_etas_ahead(
    seeded: TestClient,
    admin: Headers,
    shop: Headers,
    dispatcher: Headers,
    driver: Headers,
    engine: Engine,
    dispatch_settings: Settings,
    app: FastAPI,
) -> None:
    plan = van1_published(seeded, admin, shop, dispatcher, engine, dispatch_settings, app, 5)
    stops = plan["routes"][0]["stops"]
    etas = [datetime.fromisoformat(s["eta"]) for s in stops]
    app.state.clock = lambda: datetime(2026, 11, 19, tzinfo=UTC)

    def report(n: str, kind: str, at: datetime, stop: int | None = None) -> None:
        where = {"stop": stops[stop]["fulfillment"]} if stop is not None else {}
        body = {"id": n, "type": kind, "van": "VAN1", "at": at.isoformat(), **where}
        assert seeded.post("/v1/driver-events", json=body, headers=driver).status_code == 200

    report("e1", "route_started", datetime.fromisoformat(plan["routes"][0]["depart_at"]))
    handed = etas[0] + timedelta(seconds=dispatch_settings.dispatch_handover_s)
    report("e2", "delivered", handed, stop=0)
    # The next door took twice as long to reach as planned: rush hour the model does not know.
    leg = etas[1] - etas[0]
    report("e3", "arrived", etas[0] + 2 * leg, stop=1)
    with Session(engine) as session:
        route = session.exec(select(PlanRoute).where(PlanRoute.plan_id == plan["id"])).one()
    assert route.pace > 1.3
    now = seeded.get(f"/v1/plans/{plan['id']}", headers=dispatcher).json()["routes"][0]["stops"]
    behind = etas[0] + 2 * leg - etas[1]
    # Every door after it slips by more than the delay so far: the legs ahead take longer too.
    for before, after in zip(etas[2:], now[2:], strict=True):
        assert datetime.fromisoformat(after["eta"]) - before > behind


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


def test_a_van_starts_its_next_route_though_an_earlier_one_never_finished(
    seeded: TestClient,
    admin: Headers,
    shop: Headers,
    dispatcher: Headers,
    driver: Headers,
    engine: Engine,
    dispatch_settings: Settings,
    app: FastAPI,
) -> None:
    app.state.settings = dispatch_settings
    add_van(seeded, admin, "VAN1")
    place_orders(seeded, shop, 3)  # the 10:00 wave
    app.state.clock = lambda: AFTER_CUTOFF
    place_orders(seeded, shop, 3, seed=2)  # the 13:00 wave
    first, second = publish_waves_in_turn(
        seeded,
        dispatcher,
        engine,
        dispatch_settings,
        [AFTER_CUTOFF, CUTOFF_10 + timedelta(hours=3, minutes=1)],
    )
    app.state.clock = lambda: datetime(2026, 11, 19, tzinfo=UTC)

    def report(n: str, kind: str, at: str, **more: Any) -> Any:
        body = {"id": n, "type": kind, "van": "VAN1", "at": at, **more}
        response = seeded.post("/v1/driver-events", json=body, headers=driver)
        assert response.status_code == 200, response.text
        return response.json()

    def route_of(plan: dict[str, Any]) -> dict[str, Any]:
        view = seeded.get(f"/v1/plans/{plan['id']}", headers=dispatcher).json()
        return dict(view["routes"][0])

    early, late = route_of(first), route_of(second)
    assert report("s1", "route_started", early["depart_at"])["wave"] == first["wave"]
    # One door of the first route is never reported: in our view it stays on the road.
    for k, stop in enumerate(early["stops"][:-1]):
        report(f"d{k}", "delivered", stop["eta"], stop=stop["fulfillment"])
    assert report("s2", "route_started", late["depart_at"])["wave"] == second["wave"]
    assert route_of(second)["status"] == "started"
    with Session(engine) as session:  # its parcels are on board
        on_board = [session.get(Fulfillment, s["fulfillment"]) for s in late["stops"]]
        assert {f.status for f in on_board if f is not None} == {"out_for_delivery"}
    # A ping is about the route the van drives now, unless it names another wave.
    ping = {"lat": 53.55, "lon": -113.49}
    assert report("p1", "position", late["depart_at"], **ping)["wave"] == second["wave"]
    named = report("p2", "position", late["depart_at"], wave=first["wave"], **ping)
    assert named["wave"] == first["wave"]
    again = report("s2", "route_started", late["depart_at"])
    assert again["replayed"] and again["wave"] == second["wave"]
    body = {
        "id": "p3",
        "type": "position",
        "van": "VAN1",
        "at": late["depart_at"],
        "wave": second["wave"] + 100,
        **ping,
    }
    unknown = seeded.post("/v1/driver-events", json=body, headers=driver)
    assert assert_refused(unknown, 422, "unprocessable")["errors"][0]["field"] == "wave"


def test_a_van_that_never_leaves_lets_its_etas_slip_too(
    seeded: TestClient,
    admin: Headers,
    shop: Headers,
    dispatcher: Headers,
    engine: Engine,
    dispatch_settings: Settings,
    app: FastAPI,
) -> None:
    plan = van1_published(seeded, admin, shop, dispatcher, engine, dispatch_settings, app, 5)
    route = plan["routes"][0]
    depart = datetime.fromisoformat(route["depart_at"])
    window_end = min(datetime.fromisoformat(s["window"]["end"]) for s in route["stops"])
    silent = timedelta(seconds=dispatch_settings.dispatch_silent_van_s)

    def sweep(now: datetime) -> list[str]:
        with Session(engine) as session:
            late = silence.watch_silent_vans(session, dispatch_settings, now)
            session.commit()
        return late

    assert sweep(depart + silent - timedelta(minutes=1)) == []  # not late enough to tell yet
    # Still at the depot long after it should have left (an earlier route ran long, say).
    late = sweep(window_end - timedelta(minutes=30))
    assert late and set(late) <= {s["fulfillment"] for s in route["stops"]}
    now = seeded.get(f"/v1/plans/{plan['id']}", headers=dispatcher).json()["routes"][0]
    assert now["status"] == "planned" and all(s["eta"] > s["window"]["end"] for s in now["stops"])
