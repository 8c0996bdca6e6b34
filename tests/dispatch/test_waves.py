"""Waves: which wave a same-day order joins, cutoffs in each node's time, and a wave planned once
per version."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from fulfill.config import Settings
from fulfill.dispatch import solving
from fulfill.dispatch.models import Plan, Wave
from fulfill.dispatch.planning import Clock
from fulfill.dispatch.waves import close_due_waves, wave_for
from fulfill.inventory.models import Node
from tests.dispatch.support import (
    AFTER_CUTOFF,
    CUTOFF_10,
    Headers,
    add_van,
    place_orders,
    planned,
    the_wave,
)
from tests.support import order_body


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
