"""Trouble recovered: the stops of a van taken out of service mid-route, or standing silent, go
to the vans that can still reach them within their windows, and the customers' promises stand."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from fulfill.config import Settings
from fulfill.dispatch import silence
from fulfill.dispatch.models import LiveStop, Plan, PlanStatus, PlanStop, Wave
from fulfill.orders.models import Fulfillment, Order, OrderEvent
from tests.dispatch.support import Headers, add_van, place_orders, van1_published


def started(client: TestClient, driver: Headers, route: dict[str, Any], app: FastAPI) -> datetime:
    at = datetime.fromisoformat(route["depart_at"])
    app.state.clock = lambda: at + timedelta(minutes=1)
    body = {"id": "go", "type": "route_started", "van": route["van"], "at": at.isoformat()}
    assert client.post("/v1/driver-events", json=body, headers=driver).status_code == 200
    return at


def rescue_plan(session: Session, source_wave: int) -> Plan:
    waves = session.exec(select(Wave).where(col(Wave.id) != source_wave)).all()
    (wave,) = [w for w in waves if w.requested_by == "rescue"]
    return session.exec(
        select(Plan).where(Plan.wave_id == wave.id, Plan.status == PlanStatus.PUBLISHED)
    ).one()


def test_a_van_taken_out_of_service_mid_route_hands_its_stops_to_another_van_in_their_windows(
    seeded: TestClient,
    admin: Headers,
    shop: Headers,
    dispatcher: Headers,
    driver: Headers,
    engine: Engine,
    dispatch_settings: Settings,
    app: FastAPI,
) -> None:
    plan = van1_published(seeded, admin, shop, dispatcher, engine, dispatch_settings, app, 4)
    route = plan["routes"][0]
    left = started(seeded, driver, route, app)
    add_van(seeded, admin, "VAN2")  # at the depot, free
    app.state.clock = lambda: left + timedelta(minutes=5)
    out = seeded.patch("/v1/vans/VAN1", json={"active": False}, headers=dispatcher)
    assert out.status_code == 200, out.text
    stranded = {s["fulfillment"] for s in route["stops"]}
    with Session(engine) as session:
        rescue = rescue_plan(session, plan["wave"])
        stops = session.exec(select(PlanStop).where(PlanStop.plan_id == rescue.id)).all()
        assert {s.fulfillment_id for s in stops if s.route_id is not None} == stranded
        for stop in stops:  # each within the window first promised, a handover before its end
            assert stop.eta is not None and stop.window_start <= stop.eta <= stop.window_end
        moved = session.exec(
            select(Fulfillment).where(col(Fulfillment.id).in_(sorted(stranded)))
        ).all()
        assert {f.wave_id for f in moved} == {rescue.wave_id}
        kinds = [e.kind for e in session.exec(select(OrderEvent)).all()]
        assert kinds.count("delivery.rescued") == len(stranded)
        assert not [k for k in kinds if k.startswith("delivery.moved") or "carrier" in k]
        orders = session.exec(select(Order)).all()
        assert all(o.promise_start < o.promise_end for o in orders)
    now_plan = seeded.get(f"/v1/waves/{plan['wave']}", headers=dispatcher).json()
    published = seeded.get(f"/v1/plans/{now_plan['published_plan']['id']}", headers=dispatcher)
    van1 = next(r for r in published.json()["routes"] if r["van"] == "VAN1")
    assert van1["stops"] == []
    rescued = seeded.get(f"/v1/plans/{rescue.id}", headers=dispatcher).json()
    assert [r["van"] for r in rescued["routes"]] == ["VAN2"]


def test_a_silent_van_keeps_the_stops_no_other_van_can_reach_in_time(
    seeded: TestClient,
    admin: Headers,
    shop: Headers,
    dispatcher: Headers,
    driver: Headers,
    engine: Engine,
    dispatch_settings: Settings,
    app: FastAPI,
) -> None:
    plan = van1_published(seeded, admin, shop, dispatcher, engine, dispatch_settings, app, 4)
    route = plan["routes"][0]
    left = started(seeded, driver, route, app)
    # No other van: after three silent hours every stop is late, and nobody can take them.
    with Session(engine) as session:
        late = silence.watch_silent_vans(session, dispatch_settings, left + timedelta(hours=3))
        session.commit()
        assert set(late) == {s["fulfillment"] for s in route["stops"]}
        assert not [w for w in session.exec(select(Wave)).all() if w.requested_by == "rescue"]


def test_a_van_taken_out_of_service_before_its_cutoff_gives_its_places_to_the_others(
    seeded: TestClient, admin: Headers, shop: Headers, dispatcher: Headers, engine: Engine
) -> None:
    for code in ("VAN1", "VAN2"):
        add_van(seeded, admin, code)
    place_orders(seeded, shop, 4)
    with Session(engine) as session:
        before = {s.fulfillment_id: s.van_code for s in session.exec(select(LiveStop))}
    assert len(before) == 4 and None not in before.values()
    out = next(iter(before.values()))  # a van that holds places
    assert seeded.patch(f"/v1/vans/{out}", json={"active": False}, headers=dispatcher).is_success
    with Session(engine) as session:
        after = {s.fulfillment_id: s.van_code for s in session.exec(select(LiveStop))}
    assert set(after) == set(before) and set(after.values()) == {"VAN1", "VAN2"} - {out}
