"""The own fleet as a carrier: a published plan follows every parcel with the plan's ETA, and
the drivers' reports become tracking events, alerts and late flags."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from fulfill.config import Settings
from fulfill.tracking.models import Shipment, TrackingAlert
from tests.dispatch.support import van1_published

Headers = dict[str, str]


def shipments(engine: Engine) -> dict[str, Shipment]:
    with Session(engine) as session:
        return {s.fulfillment_id: s for s in session.exec(select(Shipment)).all()}


def test_drivers_reports_are_the_own_fleets_tracking(
    seeded: TestClient,
    admin: Headers,
    shop: Headers,
    dispatcher: Headers,
    driver: Headers,
    engine: Engine,
    dispatch_settings: Settings,
    app: FastAPI,
) -> None:
    plan = van1_published(seeded, admin, shop, dispatcher, engine, dispatch_settings, app, 3)
    route = plan["routes"][0]
    stops = route["stops"]
    followed = shipments(engine)
    assert set(followed) == {s["fulfillment"] for s in stops}
    first = followed[stops[0]["fulfillment"]]
    assert (first.carrier, first.eta_source, first.status) == ("own_fleet", "plan", "pending")
    handover = timedelta(seconds=dispatch_settings.dispatch_handover_s)
    assert first.eta == datetime.fromisoformat(stops[0]["eta"]) + handover  # in hand by then
    assert first.next_poll_at is None  # drivers report; nobody polls the own fleet

    start = datetime.fromisoformat(route["depart_at"])

    def report(n: str, kind: str, at: datetime, **more: Any) -> None:
        app.state.clock = lambda: at + timedelta(minutes=1)  # reports arrive as they happen
        body = {"id": n, "type": kind, "van": "VAN1", "at": at.isoformat(), **more}
        response = seeded.post("/v1/driver-events", json=body, headers=driver)
        assert response.status_code == 200, response.text

    report("e1", "route_started", start, lat=53.546, lon=-113.494)
    assert {s.status for s in shipments(engine).values()} == {"out_for_delivery"}
    first_at = datetime.fromisoformat(stops[0]["eta"])
    report("e2", "delivered", first_at, stop=stops[0]["fulfillment"], proof={"signed_by": "Ada"})
    report(
        "e3",
        "failed",
        first_at + timedelta(minutes=10),
        stop=stops[1]["fulfillment"],
        reason="Nobody home, card left",
    )
    report(
        "e3",
        "failed",
        first_at + timedelta(minutes=10),
        stop=stops[1]["fulfillment"],
        reason="Nobody home, card left",
    )  # a replayed report
    # Stuck far away, hours later: the last parcel's ETA leaves its window.
    report("e4", "position", start + timedelta(hours=4), lat=53.30, lon=-113.90)
    now = shipments(engine)
    done, failed, last = (now[s["fulfillment"]] for s in stops)
    assert (done.status, done.active) == ("delivered", False)
    assert (failed.status, failed.reason) == ("attempt_failed", "not_home")
    assert last.late and last.eta_source == "plan" and last.status == "out_for_delivery"
    with Session(engine) as session:
        alerts = session.exec(select(TrackingAlert.shipment_id, TrackingAlert.kind)).all()
    assert sorted(alerts) == sorted([(failed.id, "attempt_failed"), (last.id, "late")])
    order = seeded.get(f"/v1/orders/{stops[1]['order']}", headers=dispatcher).json()
    [shipment] = order["shipments"]
    assert [e["code"] for e in shipment["timeline"]] == ["route_started", "failed"]
    assert shipment["alerts"][0]["kind"] == "attempt_failed"


def test_a_parcel_cancelled_before_the_van_leaves_is_not_on_board(
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
    route = plan["routes"][0]
    gone = route["stops"][0]
    assert seeded.post(f"/v1/orders/{gone['order']}/cancel", headers=shop).status_code == 200
    start = datetime.fromisoformat(route["depart_at"])
    app.state.clock = lambda: start + timedelta(minutes=1)
    body = {"id": "s1", "type": "route_started", "van": "VAN1", "at": start.isoformat()}
    assert seeded.post("/v1/driver-events", json=body, headers=driver).status_code == 200
    now = shipments(engine)
    assert (now[gone["fulfillment"]].status, now[gone["fulfillment"]].active) == (
        "cancelled",
        False,
    )
    assert now[route["stops"][1]["fulfillment"]].status == "out_for_delivery"
