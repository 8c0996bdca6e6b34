"""The customer's tracking page (content, nothing personal, unknown tokens, rate limit, the van's
progress), the cases opened from it with their whole thread, and the service figures."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from fulfill.auth import Scope
from fulfill.config import Settings
from fulfill.notify import sending
from fulfill.notify.models import NoticeStatus
from fulfill.tracking.models import Shipment
from fulfill_carriers import TrackingStatus as S
from tests.dispatch.support import van1_published
from tests.notify.test_notices import follow, place, rows, scan, token_of
from tests.support import MORNING, Inbox, relay_now, seed_catalog

Headers = dict[str, str]
PERSONAL = ("Lovelace", "ada@example.com", "+15550100", "Jasper", "TEA-1", "53.54")


def test_the_page_tells_the_story_and_nothing_personal(
    client: TestClient,
    admin: Headers,
    shop: Headers,
    engine: Engine,
    settings: Settings,
) -> None:
    seed_catalog(client, admin)
    order_id = place(client, shop, channels=["email"])
    token = token_of(engine, order_id)
    assert len(token) >= 22  # 128 random bits
    shipment = follow(engine, order_id)
    scan(engine, shipment, S.IN_TRANSIT, MORNING + timedelta(hours=2), "IT", location="Calgary hub")
    page = client.get(f"/t/{token}")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    html = page.text
    assert "Hello Ada" in html and "Edmonton" in html and "On its way" in html
    assert "Calgary hub" in html and 'name="viewport"' in html and "TRK-1" in html
    # The scan at 17:30 UTC, told in the customer's time (Edmonton, UTC-7).
    assert "Wed, Nov 18, 10:30 AM" in html
    assert " UTC" not in html
    twin = client.get(f"/t/{token}.json")
    data = twin.json()
    assert (data["first_name"], data["town"], data["status"]) == ("Ada", "Edmonton", "in_transit")
    assert data["parcels"][0]["timeline"][0]["text"] == "On its way"
    assert data["parcels"][0]["timeline"][0]["at_text"] == "Wed, Nov 18, 10:30 AM"
    for leak in PERSONAL:
        assert leak not in html and leak not in twin.text, leak


def test_an_unknown_token_is_a_404_that_says_nothing_and_pages_are_rate_limited(
    client: TestClient,
    admin: Headers,
    shop: Headers,
    engine: Engine,
    app: FastAPI,
    settings: Settings,
) -> None:
    app.state.settings = settings.model_copy(update={"tracking_page_rate": "5/minute"})
    seed_catalog(client, admin)
    token = token_of(engine, place(client, shop))
    unknown = client.get("/t/" + "A" * 22)
    near = client.get("/t/" + token[:-1] + ("B" if token[-1] != "B" else "C") + ".json")
    assert unknown.status_code == near.status_code == 404
    assert unknown.json()["detail"] == near.json()["detail"] == "no such tracking page"
    assert client.get(f"/t/{token}.json").status_code == 200
    statuses = [client.get(f"/t/{token}").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = client.get(f"/t/{token}")
    assert limited.headers["content-type"] == "application/problem+json"
    assert int(limited.headers["retry-after"]) >= 1


def test_a_reported_problem_opens_a_case_whose_thread_holds_the_whole_story(
    client: TestClient,
    admin: Headers,
    shop: Headers,
    engine: Engine,
    settings: Settings,
    make_key: Callable[..., Headers],
    smtp: tuple[int, Inbox],
    app: FastAPI,
) -> None:
    support = make_key(Scope.SUPPORT, name="helpdesk")
    app.state.settings = settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": smtp[0]}
    )
    seed_catalog(client, admin)
    order_id = place(client, shop, channels=["email"])
    relay_now(engine, app.state.settings)
    token = token_of(engine, order_id)
    form = client.post(
        f"/t/{token}/problems",
        data={"kind": "damaged", "message": "Box crushed"},
        follow_redirects=False,
    )
    assert form.status_code == 303 and form.headers["location"] == f"/t/{token}?reported"
    assert "we have your report" in client.get(form.headers["location"]).text
    more = client.post(f"/t/{token}/problems", json={"kind": "damaged", "message": "Photo sent"})
    assert more.status_code == 201
    bad = client.post(f"/t/{token}/problems", json={"kind": "bored"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "kind"
    assert client.get("/v1/cases", headers=shop).status_code == 403
    [case] = client.get("/v1/cases?status=open", headers=support).json()
    assert case["id"] == more.json()["case"] and case["order_ref"] == "web-1001"
    thread = client.get(f"/v1/cases/{case['id']}", headers=support).json()["thread"]
    kinds = [(item["type"], item["kind"]) for item in thread]
    assert kinds[0] == ("event", "order.created")
    assert ("notice", "order_confirmed") in kinds and ("event", "case.opened") in kinds
    notice = next(item for item in thread if item["type"] == "notice")
    assert (notice["channel"], notice["status"]) == ("email", "sent")
    assert notice["subject"] == "Your order web-1001 is confirmed" and "Ada" in notice["text"]
    said = [item["text"] for item in thread if item["type"] == "message"]
    assert said == ["Box crushed", "Photo sent"]
    answered = client.post(
        f"/v1/cases/{case['id']}/messages", json={"body": "Replacement sent"}, headers=support
    )
    assert answered.status_code == 201
    closed = client.post(
        f"/v1/cases/{case['id']}/close", json={"resolution": "replaced"}, headers=support
    )
    assert closed.json()["status"] == "closed"
    assert (
        client.post(
            f"/v1/cases/{case['id']}/close", json={"resolution": "again"}, headers=support
        ).status_code
        == 409
    )
    figures = client.get("/v1/metrics/service", headers=support).json()
    assert (figures["cases_opened"], figures["cases_open"]) == (1, 0)


def test_the_own_fleets_page_shows_the_van_coming_and_late_news_is_told_in_time(
    seeded: TestClient,
    admin: Headers,
    shop: Headers,
    dispatcher: Headers,
    driver: Headers,
    engine: Engine,
    dispatch_settings: Settings,
    app: FastAPI,
    make_key: Callable[..., Headers],
) -> None:
    plan = van1_published(seeded, admin, shop, dispatcher, engine, dispatch_settings, app, 3)
    route = plan["routes"][0]
    stops = route["stops"]
    last = stops[-1]
    token = token_of(engine, last["order"])
    waiting = seeded.get(f"/t/{token}.json").json()["parcels"][0]["van"]
    assert waiting == {"started": False, "stops_before": 2, "stops_done": 0, "stops_total": 3}
    start = datetime.fromisoformat(route["depart_at"])

    def report(n: str, kind: str, at: datetime, **more: Any) -> None:
        app.state.clock = lambda: at + timedelta(minutes=1)
        body = {"id": n, "type": kind, "van": "VAN1", "at": at.isoformat(), **more}
        assert seeded.post("/v1/driver-events", json=body, headers=driver).status_code == 200

    report("e1", "route_started", start, lat=53.546, lon=-113.494)
    report("e2", "delivered", datetime.fromisoformat(stops[0]["eta"]), stop=stops[0]["fulfillment"])
    page = seeded.get(f"/t/{token}").text
    assert "The van is on its way: 1 stops before yours." in page
    stuck = start + timedelta(hours=4)
    report("e3", "position", stuck, lat=53.30, lon=-113.90)
    sent_at = stuck + timedelta(minutes=1, seconds=2)  # as a worker would, moments later
    for notice in rows(engine, status=NoticeStatus.PENDING):
        sending.send(engine, notice.id, 1, dispatch_settings, clock=lambda: sent_at)
    with Session(engine) as session:
        late = session.exec(
            select(Shipment).where(Shipment.tracking_number == last["fulfillment"])
        ).one()
    assert late.late
    view = seeded.get(f"/t/{token}.json").json()
    assert view["late"] and view["headline"] == "Running late"
    support = make_key(Scope.SUPPORT)
    period = {
        "since": (start - timedelta(days=1)).isoformat(),
        "until": (start + timedelta(days=1)).isoformat(),
    }
    figures = seeded.get("/v1/metrics/service", headers=support, params=period).json()
    late_alerts, told = figures["detection_to_first_notice"]["late"], figures["late_deliveries"]
    assert late_alerts["notified"] == late_alerts["alerts"] >= 1
    assert late_alerts["p50_s"] == 2.0  # detected at the report, told 2 s later
    with Session(engine) as session:
        ends = session.exec(select(Shipment.promised_end).where(Shipment.late)).all()
    assert told["late"] == len(ends) >= 1
    # Seen only when the van reported from far away: told at once, before or after the end.
    assert told["told_before_window_end"] == sum(1 for end in ends if end and end >= sent_at)
    assert figures["notices_by_kind"]["out_for_delivery"] == 3
    metrics = seeded.get("/metrics").text
    assert 'fulfill_alert_to_notice_seconds{alert="late",quantile="0.5"}' in metrics
