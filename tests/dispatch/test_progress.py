"""What the vans report and what follows: stops moved on, ETAs projected again and flagged late,
silent vans, tracking told."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from fulfill.config import Settings
from fulfill.dispatch import silence
from fulfill.dispatch.models import DriverEvent, PlanRoute
from fulfill.orders.models import Fulfillment
from fulfill.tracking.models import Shipment, TrackingAlert
from tests.dispatch.support import (
    AFTER_CUTOFF,
    CUTOFF_10,
    Headers,
    add_van,
    assert_refused,
    place_orders,
    publish_waves_in_turn,
    published,
    van1_published,
)
from tests.support import MORNING


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
