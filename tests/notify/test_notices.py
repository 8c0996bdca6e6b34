"""Customer notices end to end, on SQLite and PostgreSQL: decided from the order's timeline in
the transaction of their cause, sent through the outbox on a real SMTP server, the SMS sandbox
and a storefront endpoint; at most once per (subject, kind, channel); quiet hours; fallback
from one channel to the next; dead letters an admin replays."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from fulfill.auth import Scope
from fulfill.config import Settings
from fulfill.notify import sending
from fulfill.notify.figures import service_figures
from fulfill.notify.models import Notice, NoticeStatus
from fulfill.orders.models import Fulfillment, Order
from fulfill.outbox.models import OutboxEvent
from fulfill.outbox.service import claim_due
from fulfill.processes import LiveServer
from fulfill.simclock import SharedClock
from fulfill.tracking import following
from fulfill.tracking import recording as tracking
from fulfill.tracking.models import Shipment
from fulfill_carriers import SIGNATURE_HEADER, CarrierEvent, ExceptionReason, verify
from fulfill_carriers import TrackingStatus as S
from fulfill_carriers.sandboxes import SmsState
from fulfill_carriers.sandboxes import sms_sandbox_app as sandbox_app
from tests.support import MORNING, Inbox, WebhookReceiver, order_body, relay_now, seed_catalog

Headers = dict[str, str]
SECRET = "whsec_notices"


@pytest.fixture
def sms() -> Iterator[tuple[str, SmsState]]:
    state = SmsState()
    with LiveServer(sandbox_app(state)) as server:
        yield server.url, state


@pytest.fixture
def ntc_settings(
    settings: Settings, smtp: tuple[int, Inbox], sms: tuple[str, SmsState], app: FastAPI
) -> Settings:
    configured = settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp[0],
            "sms_url": sms[0],
            "notices_webhook_secret": SECRET,
            "shop_name": "Tea House",
            "notice_attempts": 2,
            "public_url": "https://track.example",
        }
    )
    app.state.settings = configured
    return configured


def place(client: TestClient, shop: Headers, external_id: str = "web-1001", **customer: Any) -> str:
    body = order_body(external_id, service_level="standard")
    body["customer"] = {**body["customer"], "name": "Ada Lovelace", **customer}
    body["destination"] = {
        "address": {"line1": "10 Jasper Ave", "city": "Edmonton"},
        "lat": 53.5436,
        "lon": -113.4923,
    }
    response = client.post("/v1/orders", json=body, headers=shop)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def token_of(engine: Engine, order_id: str) -> str:
    with Session(engine) as session:
        order = session.get(Order, order_id)
        assert order is not None
        return order.tracking_token


def follow(engine: Engine, order_id: str, number: str = "TRK-1") -> str:
    with Session(engine) as session:
        fulfillment = session.exec(
            select(Fulfillment).where(Fulfillment.order_id == order_id)
        ).first()
        assert fulfillment is not None
        shipment = following.follow(session, fulfillment, "sandbox", number, MORNING)
        session.commit()
        return shipment.id


def scan(engine: Engine, shipment_id: str, status: S, at: datetime, code: str, **kw: Any) -> None:
    with Session(engine) as session:
        shipment = tracking.locked(session, shipment_id)
        event = CarrierEvent(shipment.tracking_number, status, code, at, **kw)
        tracking.record(session, shipment, [event], source="webhook", now=at)
        session.commit()


def rows(engine: Engine, **where: Any) -> list[Notice]:
    with Session(engine) as session:
        statement = select(Notice).order_by(col(Notice.created_at), col(Notice.kind))
        for name, value in where.items():
            statement = statement.where(getattr(Notice, name) == value)
        return list(session.exec(statement))


def subjects(inbox: Inbox) -> list[str]:
    return [str(m["Subject"]) for m in inbox.messages]


def text_of(message: Any) -> str:
    return str(message.get_body(preferencelist=("plain",)).get_content())


def test_each_kind_reaches_the_customer_once_in_their_words(
    client: TestClient,
    admin: Headers,
    shop: Headers,
    engine: Engine,
    ntc_settings: Settings,
    smtp: tuple[int, Inbox],
) -> None:
    _, inbox = smtp
    seed_catalog(client, admin)
    order_id = place(client, shop, channels=["email"])
    relay_now(engine, ntc_settings)
    assert subjects(inbox) == ["Your order web-1001 is confirmed"]
    shipment = follow(engine, order_id)
    day = MORNING + timedelta(days=1)
    story = [
        (S.PICKED_UP, "PU", {}),
        (S.IN_TRANSIT, "IT", {}),  # still "shipped": told once
        (S.OUT_FOR_DELIVERY, "OD", {"eta": day + timedelta(hours=2, minutes=7)}),
        (S.ATTEMPT_FAILED, "AF", {"reason": ExceptionReason.NOT_HOME}),
        (S.DELIVERED, "DL", {}),
    ]
    for minutes, (status, code, more) in enumerate(story):
        scan(engine, shipment, status, day + timedelta(minutes=minutes), code, **more)
        relay_now(engine, ntc_settings)
    # Everything again, as a carrier replaying its webhooks would: nothing new is said.
    for minutes, (status, code, more) in enumerate(story):
        scan(engine, shipment, status, day + timedelta(minutes=minutes), code, **more)
    relay_now(engine, ntc_settings)
    told = [n.kind for n in rows(engine, status=NoticeStatus.SENT)]
    assert told == ["order_confirmed", "shipped", "out_for_delivery", "attempt_failed", "delivered"]
    assert len(inbox.messages) == 5
    assert len({m["Message-ID"] for m in inbox.messages}) == 5
    out = text_of(inbox.messages[2])
    # An hour around the carrier's ETA (17:37 UTC = 10:37 in Edmonton), in local time.
    assert "10:05 \N{EN DASH} 11:05 AM" in out and "https://track.example/t/" in out
    failed = text_of(inbox.messages[3])
    assert "nobody was home" in failed and "try again" in failed
    assert "ada@example.com" not in str(rows(engine)[0].context)  # facts, never the address


def test_a_cancelled_order_is_told_once_and_nothing_after_it(
    client: TestClient,
    admin: Headers,
    shop: Headers,
    engine: Engine,
    ntc_settings: Settings,
    smtp: tuple[int, Inbox],
) -> None:
    _, inbox = smtp
    seed_catalog(client, admin)
    order_id = place(client, shop, channels=["email"])
    placed = client.get(f"/v1/orders/{order_id}", headers=shop).json()
    assert placed["tracking_url"] == f"https://track.example/t/{token_of(engine, order_id)}"
    for _ in range(2):  # cancelling twice tells the customer once
        cancelled = client.post(f"/v1/orders/{order_id}/cancel", headers=shop)
        assert cancelled.status_code == 200, cancelled.text
    relay_now(engine, ntc_settings)
    told = {n.kind: n.status for n in rows(engine, order_id=order_id)}
    assert told == {"order_confirmed": NoticeStatus.SENT, "order_cancelled": NoticeStatus.SENT}
    assert subjects(inbox) == [
        "Your order web-1001 is confirmed",
        "Your order web-1001 is cancelled",
    ]
    assert placed["tracking_url"] in text_of(inbox.messages[1])


def test_late_and_exception_come_with_an_apology_and_a_remedy_in_french(
    client: TestClient,
    admin: Headers,
    shop: Headers,
    engine: Engine,
    ntc_settings: Settings,
    smtp: tuple[int, Inbox],
    sms: tuple[str, SmsState],
) -> None:
    _, inbox = smtp
    seed_catalog(client, admin)
    late = place(client, shop, "web-late", channels=["sms"], language="fr-CA")
    lost = place(client, shop, "web-lost", channels=["email"], language="fr")
    with Session(engine) as session:
        promised_end = session.get(Order, late).promise_end  # type: ignore[union-attr]
    late_shipment, lost_shipment = follow(engine, late, "TRK-L"), follow(engine, lost, "TRK-X")
    at = MORNING + timedelta(hours=1)
    scan(engine, late_shipment, S.IN_TRANSIT, at, "IT", eta=promised_end + timedelta(hours=5))
    scan(engine, lost_shipment, S.EXCEPTION, at, "EX", reason=ExceptionReason.LOST)
    relay_now(engine, ntc_settings)
    said = {m["to"]: m["body"] for m in sms[1].messages}
    apology = said["+15550100"]
    assert apology.startswith("Tea House") and "retard" in apology
    assert "/t/" in apology  # the remedy: the tracking page, where a slot or refund is chosen
    assert [n.kind for n in rows(engine, order_id=late)] == [
        "order_confirmed",
        "running_late",
        "shipped",
    ]
    exception = "Un problème avec votre livraison, et ce que nous faisons"
    [lost_mail] = [m for m in inbox.messages if m["Subject"] == exception]
    body = text_of(lost_mail)
    assert "remplacement" in body and lost_mail["Content-Language"] == "fr"
    # Both the exception and the lost alert answer with one notice.
    assert [n.kind for n in rows(engine, order_id=lost) if n.kind != "order_confirmed"] == [
        "exception"
    ]


def test_quiet_hours_hold_what_can_wait_and_let_urgent_news_through(
    client: TestClient,
    admin: Headers,
    shop: Headers,
    engine: Engine,
    ntc_settings: Settings,
    app: FastAPI,
    smtp: tuple[int, Inbox],
) -> None:
    _, inbox = smtp
    seed_catalog(client, admin)
    night = datetime(2026, 11, 19, 5, 0, tzinfo=UTC)  # 22:00 in Edmonton
    app.state.clock = lambda: night
    order_id = place(
        client,
        shop,
        channels=["email"],
        timezone="America/Edmonton",
        quiet_hours={"start": "21:00", "end": "07:30"},
    )
    [confirmed] = rows(engine)
    morning = datetime(2026, 11, 19, 14, 30, tzinfo=UTC)  # 07:30 in Edmonton
    assert (confirmed.not_before, confirmed.urgent) == (morning, False)
    with Session(engine) as session:
        queued = session.exec(select(OutboxEvent).where(OutboxEvent.topic == "notice.send")).one()
        assert queued.next_run_at == morning
    shipment = follow(engine, order_id)
    scan(engine, shipment, S.PICKED_UP, night + timedelta(minutes=5), "PU")
    scan(engine, shipment, S.OUT_FOR_DELIVERY, night + timedelta(minutes=9), "OD")
    held = {n.kind: n for n in rows(engine)}
    assert held["shipped"].not_before == morning
    assert held["out_for_delivery"].not_before == night + timedelta(minutes=9)  # urgent: now
    relay_now(engine, ntc_settings)  # everything due, as if the morning had come
    confirmed_mail, out_mail = subjects(inbox)
    assert confirmed_mail == "Your order web-1001 is confirmed"
    assert out_mail.startswith("Your parcel is out for delivery: ")
    # "Shipped", held until the morning, says nothing once the parcel is out for delivery.
    assert {n.kind: n.status for n in rows(engine)}["shipped"] == NoticeStatus.SKIPPED


def test_a_refused_channel_falls_back_at_once_and_a_failing_one_after_its_tries(
    client: TestClient,
    admin: Headers,
    shop: Headers,
    engine: Engine,
    ntc_settings: Settings,
    smtp: tuple[int, Inbox],
    sms: tuple[str, SmsState],
) -> None:
    _, inbox = smtp
    seed_catalog(client, admin)
    place(client, shop, "web-gone", email="gone@example.com", channels=["email", "sms"])
    place(
        client,
        shop,
        "web-full",
        email="full@example.com",
        phone="+15550199",
        channels=["email", "sms"],
    )
    relay_now(engine, ntc_settings)
    refused = {n.to: n for n in rows(engine)}
    assert refused["gone@example.com"].status == NoticeStatus.FAILED
    assert "550" in (refused["gone@example.com"].error or "")
    assert refused["+15550100"].fallback_of == refused["gone@example.com"].id
    assert refused["+15550100"].status == NoticeStatus.PENDING  # queued on the next channel
    assert refused["full@example.com"].status == NoticeStatus.PENDING  # 452: tried again
    relay_now(engine, ntc_settings)  # the second try of two fails too: the next channel
    assert [m["to"] for m in sms[1].messages] == ["+15550100"]
    relay_now(engine, ntc_settings)
    assert sorted(m["to"] for m in sms[1].messages) == ["+15550100", "+15550199"]
    assert {n.channel: n.status for n in rows(engine) if "full" in n.to or "199" in n.to} == {
        "email": NoticeStatus.FAILED,
        "sms": NoticeStatus.SENT,
    }
    assert inbox.messages == []


def test_storefront_webhook_notices_are_signed_and_a_dead_letter_is_replayed_by_an_admin(
    client: TestClient,
    admin: Headers,
    shop: Headers,
    engine: Engine,
    ntc_settings: Settings,
    app: FastAPI,
    make_key: Callable[..., Headers],
) -> None:
    support = make_key(Scope.SUPPORT, name="helpdesk")
    seed_catalog(client, admin)
    with WebhookReceiver(statuses=(503,)) as down:
        app.state.settings = ntc_settings.model_copy(update={"notices_webhook_url": down.url})
        order_id = place(client, shop, channels=["webhook"])
        relay_now(engine, app.state.settings)
        relay_now(engine, app.state.settings)  # two tries, then no channel is left
        assert len(down.received) == 2
    dead = client.get("/v1/notices?dead=true", headers=support).json()
    assert [(d["order"], d["channel"], d["dead"]) for d in dead] == [(order_id, "webhook", True)]
    replay = f"/v1/notices/{dead[0]['id']}/replay"
    assert client.post(replay, headers=support).status_code == 403
    with WebhookReceiver() as healthy:
        app.state.settings = ntc_settings.model_copy(update={"notices_webhook_url": healthy.url})
        assert client.post(replay, headers=admin).json()["status"] == "pending"
        assert client.post(replay, headers=admin).status_code == 409  # pending, not dead
        relay_now(engine, app.state.settings)
        [(headers, body)] = healthy.received
    verify(body, headers[SIGNATURE_HEADER], SECRET)
    sent = json.loads(body)
    assert (sent["kind"], sent["id"]) == ("order_confirmed", dead[0]["id"])
    assert sent["data"]["order"] == order_id
    assert headers["Fulfill-Notice-Id"] == dead[0]["id"]
    assert client.get("/v1/notices?dead=true", headers=support).json() == []
    timeline = [
        e["kind"] for e in client.get(f"/v1/orders/{order_id}", headers=admin).json()["timeline"]
    ]
    assert timeline[-3:] == ["notice.failed", "notice.replayed", "notice.sent"]


def test_a_worker_that_died_mid_send_sends_nothing_twice(
    client: TestClient,
    admin: Headers,
    shop: Headers,
    engine: Engine,
    ntc_settings: Settings,
    smtp: tuple[int, Inbox],
) -> None:
    _, inbox = smtp
    seed_catalog(client, admin)
    place(client, shop, channels=["email"])
    # A worker claims the notice's event and dies before sending: the lease runs out.
    with Session(engine, expire_on_commit=False) as session:
        claimed = claim_due(session, 10, timedelta(minutes=5))
        assert "notice.send" in {r.topic for r in claimed}
    relay_now(engine, ntc_settings)
    # Another sent it, then died before recording the event as sent: it comes round again.
    with Session(engine) as session:
        session.execute(
            update(OutboxEvent).where(OutboxEvent.topic == "notice.send").values(status="pending")
        )
        session.commit()
    relay_now(engine, ntc_settings)
    [notice] = rows(engine)
    assert sending.send(engine, notice.id, 1, ntc_settings).status == "done"
    assert len(inbox.messages) == 1 and notice.status == NoticeStatus.SENT


def test_a_failed_attempt_told_in_the_window_counts_as_telling_a_late_customer(
    client: TestClient,
    admin: Headers,
    shop: Headers,
    engine: Engine,
    ntc_settings: Settings,
    clock: SharedClock,
) -> None:
    seed_catalog(client, admin)
    failed, silent = place(client, shop, "web-1"), place(client, shop, "web-2")
    shipments = [follow(engine, failed, "TRK-1"), follow(engine, silent, "TRK-2")]
    day = MORNING + timedelta(days=1)
    clock.set(day, 1.0)  # the attempt fails, and its notice goes, the next day
    scan(engine, shipments[0], S.ATTEMPT_FAILED, day, "AF", reason=ExceptionReason.NOT_HOME)
    relay_now(engine, ntc_settings)
    with Session(engine) as session:
        told = session.exec(
            select(Notice).where(Notice.order_id == failed, Notice.kind == "attempt_failed")
        ).one()
        assert told.status == NoticeStatus.SENT and told.sent_at is not None
        # Both windows end an hour later, neither parcel delivered: late, as the sweep marks them.
        end = told.sent_at + timedelta(hours=1)
        session.execute(update(Shipment).values(late=True, promised_end=end))
        session.commit()
        figures = service_figures(session, MORNING, end)
    late = figures.late_deliveries
    assert (late.late, late.told_before_window_end) == (2, 1)
    assert late.median_lead_s == 3600.0
