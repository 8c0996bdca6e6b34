"""Every open wave has a live plan: each same-day order is inserted into it as it is accepted,
the promises are made against it, and the plan at the cutoff keeps every stop it holds."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from fulfill.config import Settings
from fulfill.dispatch import live, polishing, solving
from fulfill.dispatch.models import LiveRoute, LiveStop, PlanStop, Wave
from fulfill.dispatch.waves import close_due_waves
from fulfill.inventory.models import Node
from fulfill.orders.models import Fulfillment, OrderEvent
from fulfill_routing import Route, Solution, Unserved
from tests.dispatch.support import AFTER_CUTOFF, CUTOFF_10, add_van
from tests.support import DOWNTOWN, MORNING, order_body

Headers = dict[str, str]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The room check on, as it is by default (the other dispatch tests turn it off)."""
    return settings.model_copy(update={"same_day_room_check": True})


def near_doors(count: int) -> list[dict[str, float]]:
    return [
        {"lat": DOWNTOWN["lat"] + 0.004 * k, "lon": DOWNTOWN["lon"] - 0.006 * k}
        for k in range(count)
    ]


def place(client: TestClient, shop: Headers, count: int) -> list[dict[str, Any]]:
    placed = []
    for k, door in enumerate(near_doors(count)):
        response = client.post(
            "/v1/orders", json=order_body(f"live-{k}", destination=door), headers=shop
        )
        assert response.status_code == 201, response.text
        placed.append(response.json())
    return placed


def same_day_order_by(client: TestClient, shop: Headers) -> str:
    body = {
        "destination": near_doors(1)[0],
        "lines": [{"sku": "TEA-1", "quantity": 1}],
        "service_levels": ["same_day"],
        "at": MORNING.isoformat(),
    }
    option = client.post("/v1/promises", json=body, headers=shop).json()["options"][0]
    assert option["available"], option
    return str(option["order_by"])


def test_orders_take_places_in_the_live_plan_and_the_next_ones_a_later_wave(
    seeded: TestClient, admin: Headers, shop: Headers, engine: Engine
) -> None:
    for code in ("VAN1", "VAN2"):
        add_van(seeded, admin, code, capacity_parcels=3)
    placed = place(seeded, shop, 8)
    starts = Counter(o["promise"]["window_start"] for o in placed)
    assert sorted(starts.values()) == [2, 6], starts  # two vans of three: the rest at 13:00
    with Session(engine) as session:
        first = session.exec(select(Wave).where(Wave.cutoff_at == CUTOFF_10)).one()
        stops = session.exec(select(LiveStop).where(LiveStop.wave_id == first.id)).all()
        assert Counter(s.van_code for s in stops) == {"VAN1": 3, "VAN2": 3}
        for van in ("VAN1", "VAN2"):
            assert sorted(s.position for s in stops if s.van_code == van) == [0, 1, 2]
        routes = session.exec(select(LiveRoute).where(LiveRoute.wave_id == first.id)).all()
        assert {r.van_code for r in routes} == {"VAN1", "VAN2"}
        assert all(r.depart_at >= CUTOFF_10 and r.return_at > r.depart_at for r in routes)


def test_a_cancelled_order_gives_its_place_back(
    seeded: TestClient, admin: Headers, shop: Headers
) -> None:
    add_van(seeded, admin, "VAN1", capacity_parcels=2)
    placed = place(seeded, shop, 2)
    assert same_day_order_by(seeded, shop) != CUTOFF_10.isoformat().replace("+00:00", "Z")
    cancelled = seeded.post(f"/v1/orders/{placed[0]['id']}/cancel", json={}, headers=shop)
    assert cancelled.status_code == 200, cancelled.text
    assert same_day_order_by(seeded, shop) == CUTOFF_10.isoformat().replace("+00:00", "Z")


def test_the_plan_at_the_cutoff_keeps_every_stop_the_live_plan_promised(
    seeded: TestClient, admin: Headers, shop: Headers, engine: Engine, settings: Settings
) -> None:
    for code in ("VAN1", "VAN2"):
        add_van(seeded, admin, code, capacity_parcels=4, shift_end="14:00")
    place(seeded, shop, 8)
    with Session(engine) as session:
        first = session.exec(select(Wave).where(Wave.cutoff_at == CUTOFF_10)).one()
        promised = {
            s.fulfillment_id
            for s in session.exec(select(LiveStop).where(LiveStop.wave_id == first.id))
        }
        assert len(promised) == 8
        wave_id = first.id
        assert wave_id is not None and close_due_waves(session, AFTER_CUTOFF) == [wave_id]
        session.commit()
    plan = solving.plan_wave(engine, wave_id, settings, AFTER_CUTOFF)
    assert plan is not None and plan.unassigned == 0
    with Session(engine) as session:
        routed = {
            s.fulfillment_id
            for s in session.exec(select(PlanStop).where(PlanStop.plan_id == plan.id))
            if s.route_id is not None
        }
        assert routed == promised
        in_wave = session.exec(select(Fulfillment).where(Fulfillment.wave_id == wave_id)).all()
        assert {f.id for f in in_wave} == promised
        moved = session.exec(
            select(OrderEvent).where(col(OrderEvent.kind).startswith("delivery.moved"))
        ).all()
        assert moved == []


def test_a_solve_that_serves_fewer_stops_than_the_live_plan_is_not_kept() -> None:
    route = Route(vehicle="VAN1", visits=(), start=0, end=0, distance=0, duration=0, cost=50)
    live = Solution(routes=(route,), cost=50, distance=0, engine="live")
    dropped = Solution(
        routes=(route.model_copy(update={"cost": 10}),),
        unserved=(Unserved(stop="f1", reason="left out: serving it costs more than its penalty"),),
        cost=10,
        distance=0,
        engine="ortools",
    )
    kept, warnings = solving.solved_or_live(dropped, live)
    assert kept.engine == "live" and warnings
    cheaper = dropped.model_copy(update={"unserved": ()})
    assert solving.solved_or_live(cheaper, live) == (cheaper, [])


def test_a_polish_keeps_every_place_and_never_costs_more(
    seeded: TestClient, admin: Headers, shop: Headers, engine: Engine, settings: Settings
) -> None:
    for code in ("VAN1", "VAN2"):
        add_van(seeded, admin, code)
    # Doors east and west in turn: inserted one by one, both vans cross the city.
    for k in range(10):
        side = 1 if k % 2 else -1
        door = {"lat": DOWNTOWN["lat"] + 0.01 * (k % 3), "lon": DOWNTOWN["lon"] + side * 0.12}
        body = order_body(f"zig-{k}", destination=door)
        assert seeded.post("/v1/orders", json=body, headers=shop).status_code == 201
    with Session(engine) as session:
        wave = session.exec(select(Wave).where(Wave.cutoff_at == CUTOFF_10)).one()
        before = {s.fulfillment_id for s in session.exec(select(LiveStop)) if s.van_code}
        cost_before = live_cost(session, wave, settings)
    assert wave.id is not None and len(before) == 10
    polish = settings.model_copy(update={"dispatch_polish_s": 1.0})
    kept = polishing.polish_wave(engine, wave.id, polish, MORNING)
    with Session(engine) as session:
        wave = session.exec(select(Wave).where(Wave.id == wave.id)).one()
        after = {s.fulfillment_id for s in session.exec(select(LiveStop)) if s.van_code}
        assert after == before and wave.polished_rev == wave.live_rev
        cost_after = live_cost(session, wave, settings)
    assert cost_after < cost_before if kept else cost_after == cost_before
    # Polished lately, and nothing changed since: not again.
    with Session(engine) as session:
        assert polishing.waves_to_polish(session, MORNING) == []
    assert not polishing.polish_wave(engine, wave.id, polish, MORNING)


def live_cost(session: Session, wave: Wave, settings: Settings) -> int:
    node = session.get(Node, wave.node_id)
    assert node is not None
    plan = live.live_plan(session, node, wave, settings)
    assert plan is not None
    return sum(r.cost for r in plan.solution.routes)
