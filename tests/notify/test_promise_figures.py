"""Same-day promises counted as customers live them: kept only within the window first given,
however the service moved the order since; late ones by cause; false alarms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from fulfill.config import Settings
from fulfill.notify.models import Notice, NoticeStatus
from fulfill.notify.promises import AFTER_WINDOW, NOT_DELIVERED, same_day_outcomes
from fulfill.orders.models import Order
from tests.dispatch.support import AFTER_CUTOFF, add_van, place_orders, published, van1_published
from tests.support import MORNING

Headers = dict[str, str]
DAY_START = datetime(2026, 11, 18, 7, 0, tzinfo=UTC)  # midnight in Edmonton
DAY_END = DAY_START + timedelta(days=1)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Orders placed before any van exists, so that the plan must move some."""
    return settings.model_copy(update={"same_day_room_check": False})


def figures(client: TestClient, admin: Headers) -> dict[str, Any]:
    since = DAY_START.isoformat()
    answer = client.get(
        "/v1/metrics/service", params={"since": since, "until": DAY_END.isoformat()}, headers=admin
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["promises"]["same_day"])


def test_a_promise_is_kept_only_within_the_window_first_given(
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
    app.state.clock = lambda: DAY_END
    route = plan["routes"][0]
    on_time, late, never = route["stops"][:3]

    def report(n: str, kind: str, at: datetime, **more: Any) -> None:
        body = {"id": n, "type": kind, "van": "VAN1", "at": at.isoformat(), **more}
        assert seeded.post("/v1/driver-events", json=body, headers=driver).status_code == 200

    report("e1", "route_started", datetime.fromisoformat(route["depart_at"]))
    report("e2", "delivered", datetime.fromisoformat(on_time["eta"]), stop=on_time["fulfillment"])
    after = datetime.fromisoformat(late["window"]["end"]) + timedelta(minutes=30)
    report("e3", "delivered", after, stop=late["fulfillment"])
    with Session(engine) as session:  # the customer was told "running late", wrongly
        session.add(
            Notice(
                subject=f"order:{on_time['order']}",
                order_id=on_time["order"],
                kind="running_late",
                channel="email",
                to="ada@example.com",
                language="en",
                context={},
                trigger="delivery.late_predicted",
                triggered_at=MORNING,
                not_before=MORNING,
                status=NoticeStatus.SENT,
                sent_at=MORNING,
            )
        )
        session.commit()
    same_day = figures(seeded, admin)
    assert (same_day["placed"], same_day["kept"], same_day["early"]) == (3, 1, 0)
    assert same_day["late"] == {AFTER_WINDOW: 1, NOT_DELIVERED: 1}
    assert same_day["told_late"] >= 1 and same_day["false_alarms"] == 1
    assert never["order"] not in {o.order_id for o in _kept(engine)}


def test_a_moved_promise_is_judged_by_the_window_first_given(
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
    with Session(engine) as session:
        first = {o: _window(session, o) for o in orders}
    app.state.clock = lambda: AFTER_CUTOFF
    plan = published(seeded, dispatcher, engine, dispatch_settings)
    left = {s["order"] for s in plan["unassigned_stops"]}
    assert len(left) == 3
    with Session(engine) as session:
        outcomes = {o.order_id: o for o in same_day_outcomes(session, DAY_START, DAY_END)}
        moved_to = {o: _window(session, o) for o in left}
    for order_id in left:
        assert moved_to[order_id] != first[order_id]  # the order now carries the new window
        outcome = outcomes[order_id]
        assert (outcome.first_start, outcome.first_end) == first[order_id]
        assert outcome.moved_because and outcome.late_because == f"moved: {outcome.moved_because}"
    same_day = figures(seeded, admin)
    assert sum(same_day["moved"].values()) == 3 and same_day["kept"] == 0


def _window(session: Session, order_id: str) -> tuple[datetime, datetime]:
    order = session.get(Order, order_id)
    assert order is not None
    return order.promise_start, order.promise_end


def _kept(engine: Engine) -> list[Any]:
    with Session(engine) as session:
        return [o for o in same_day_outcomes(session, DAY_START, DAY_END) if o.kept]
