"""Shipments followed to the door, on SQLite and PostgreSQL: the parcel carrier (the sandbox
over real HTTP) polled and by signed webhook, AfterShip's webhooks, statuses that only move
forward, each alert once, and a carrier in trouble that loses nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from fulfill.config import Settings
from fulfill.db import utcnow
from fulfill.orders.models import Fulfillment
from fulfill.processes import LiveServer
from fulfill.tracking import carriers, following, ingest, polling, public, recording, sweeping
from fulfill.tracking.models import CarrierHealth, Shipment, TrackingAlert, WebhookReceipt
from fulfill_carriers import CarrierEvent, ExceptionReason, sign
from fulfill_carriers import TrackingStatus as S
from fulfill_carriers.aftership.adapter import SIGNATURE_HEADER as AFTERSHIP_HEADER
from fulfill_carriers.sandbox.adapter import SIGNATURE_HEADER
from fulfill_carriers.sandboxes import CarrierState
from fulfill_carriers.sandboxes import carrier_sandbox_app as sandbox_app
from tests.support import order_body, relay_now, seed_catalog

Headers = dict[str, str]
SECRET = "whsec_carrier"
AFTERSHIP_SECRET = "aftership_secret"


@pytest.fixture
def carrier() -> Iterator[tuple[str, CarrierState]]:
    state = CarrierState(mix={"delivered": 1.0})
    with LiveServer(sandbox_app(state)) as server:
        yield server.url, state


@pytest.fixture
def trk_settings(settings: Settings, carrier: tuple[str, CarrierState]) -> Settings:
    return settings.model_copy(
        update={
            "carrier_url": carrier[0],
            "carrier_webhook_secret": SECRET,
            "aftership_webhook_secret": AFTERSHIP_SECRET,
            "tracking_retries": 2,
            "tracking_breaker_failures": 2,
            "tracking_rate_per_s": 1000.0,
            "carrier_timeout_s": 0.3,
        }
    )


@pytest.fixture
def shipped(
    client: TestClient,
    admin: Headers,
    shop: Headers,
    app: FastAPI,
    engine: Engine,
    trk_settings: Settings,
) -> dict[str, Any]:
    """A standard order from WH1, its parcel created with the carrier through the outbox."""
    app.state.settings = trk_settings
    seed_catalog(client, admin)
    response = client.post("/v1/orders", json=order_body(service_level="standard"), headers=shop)
    assert response.status_code == 201, response.text
    relay_now(engine, trk_settings)
    with Session(engine) as session:
        shipment = session.exec(select(Shipment)).one()
    return {"order": response.json(), "shipment": shipment.id, "number": shipment.tracking_number}


def poll(engine: Engine, settings: Settings, now: datetime) -> polling.PollReport:
    configured = carriers.configured(settings)
    try:
        return polling.poll_due(engine, configured, settings, now)
    finally:
        carriers.close(configured)


def the_shipment(engine: Engine, shipment_id: str) -> Shipment:
    with Session(engine) as session:
        shipment = session.get(Shipment, shipment_id)
        assert shipment is not None
        return shipment


def event(number: str, status: S, at: datetime, code: str, **kw: Any) -> CarrierEvent:
    return CarrierEvent(number, status, code, at, **kw)


def test_a_parcel_is_created_once_polled_to_the_door_and_shown_on_its_order(
    shipped: dict[str, Any],
    client: TestClient,
    shop: Headers,
    engine: Engine,
    trk_settings: Settings,
    carrier: tuple[str, CarrierState],
) -> None:
    url, state = carrier
    relay_now(engine, trk_settings)  # a replayed outbox event makes no second parcel
    assert len(state.parcels) == 1
    now = utcnow()
    assert poll(engine, trk_settings, now).events == 1  # information received
    assert the_shipment(engine, shipped["shipment"]).status == S.INFO_RECEIVED
    assert poll(engine, trk_settings, now).calls == 0  # not due again for hours
    httpx.post(f"{url}/sandbox/clock", json={"advance_s": 40 * 3600})
    later = now + timedelta(hours=5)
    report = poll(engine, trk_settings, later)
    assert report.events == 6 and report.shipments == 1
    shipment = the_shipment(engine, shipped["shipment"])
    assert (shipment.status, shipment.active, shipment.next_poll_at) == (S.DELIVERED, False, None)
    with Session(engine) as session:
        fulfillment = session.get(Fulfillment, shipment.fulfillment_id)
        assert fulfillment is not None and fulfillment.status == "delivered"
    order = client.get(f"/v1/orders/{shipped['order']['id']}", headers=shop).json()
    [seen] = order["shipments"]
    assert [e["code"] for e in seen["timeline"]] == ["CR", "PU", "AF", "DF", "AF", "OD", "DL"]
    assert seen["status"] == "delivered" and seen["carrier"] == "sandbox"
    kinds = [e["kind"] for e in order["timeline"]]
    assert "shipment.followed" in kinds and "shipment.delivered" in kinds
    direct = client.get(f"/v1/shipments/{shipped['shipment']}", headers=shop)
    assert direct.status_code == 200 and direct.json()["timeline"] == seen["timeline"]
    assert client.get("/v1/shipments/nope", headers=shop).status_code == 404


def test_an_older_event_of_the_same_rank_arriving_late_does_not_win(
    shipped: dict[str, Any], engine: Engine, trk_settings: Settings
) -> None:
    """Out for delivery at 10:00, a failed attempt at 11:00 and another at 13:00 (the driver came
    back); the carrier's delivery of the 12:00 "out for delivery" comes last. The parcel's latest
    word is the 13:00 attempt: it stays a failed attempt."""
    number, t0 = shipped["number"], utcnow()
    at = {hour: t0 + timedelta(hours=hour) for hour in (10, 11, 12, 13)}
    deliveries = [
        [event(number, S.OUT_FOR_DELIVERY, at[10], "OD1")],
        [event(number, S.ATTEMPT_FAILED, at[11], "AF1", reason=ExceptionReason.NOT_HOME)],
        [event(number, S.ATTEMPT_FAILED, at[13], "AF2", reason=ExceptionReason.NOT_HOME)],
        [event(number, S.OUT_FOR_DELIVERY, at[12], "OD2")],
    ]
    with Session(engine) as session:
        for delivered in deliveries:  # each its own delivery, as a webhook or a poll brings it
            shipment = recording.locked(session, shipped["shipment"])
            recording.record(session, shipment, delivered, source="webhook", now=at[13])
            session.commit()
        shipment = recording.locked(session, shipped["shipment"])
        assert (shipment.status, shipment.status_at) == (S.ATTEMPT_FAILED, at[13])


def test_replayed_and_out_of_order_events_change_nothing(
    shipped: dict[str, Any], engine: Engine, trk_settings: Settings
) -> None:
    number, t0 = shipped["number"], utcnow()
    moving = event(number, S.IN_TRANSIT, t0 + timedelta(hours=3), "AF")
    early = event(number, S.INFO_RECEIVED, t0, "CR")
    with Session(engine) as session:
        shipment = recording.locked(session, shipped["shipment"])
        first = recording.record(session, shipment, [moving, moving], source="poll", now=t0)
        late = recording.record(session, shipment, [early, moving], source="webhook", now=t0)
        assert (first.stored, late.stored, late.moved) == (1, 1, False)
        assert shipment.status == S.IN_TRANSIT  # the older event is kept, not obeyed
        # Same rank, different times: a new run out for delivery after a failed attempt moves,
        # a failed attempt reported late (older than the run) does not.
        failed = event(
            number,
            S.ATTEMPT_FAILED,
            t0 + timedelta(hours=20),
            "NH",
            reason=ExceptionReason.NOT_HOME,
        )
        rerun = event(number, S.OUT_FOR_DELIVERY, t0 + timedelta(hours=44), "OD")
        recording.record(session, shipment, [rerun], source="poll", now=t0)
        recording.record(session, shipment, [failed], source="poll", now=t0)
        assert shipment.status == S.OUT_FOR_DELIVERY
        done = event(number, S.DELIVERED, t0 + timedelta(hours=45), "DL")
        stale = event(
            number, S.EXCEPTION, t0 + timedelta(hours=46), "WX", reason=ExceptionReason.WEATHER
        )
        recording.record(session, shipment, [done, stale], source="poll", now=t0)
        assert shipment.status == S.DELIVERED and not shipment.active
        session.commit()
        stored = public.shipments_public(session, [shipment])[0]
    assert [e.code for e in stored.timeline] == ["CR", "AF", "NH", "OD", "DL", "WX"]
    assert [e.moved for e in stored.timeline] == [False, True, False, True, True, False]


def test_each_alert_is_written_once_with_when_it_was_detected(
    shipped: dict[str, Any], engine: Engine, trk_settings: Settings
) -> None:
    number, t0 = shipped["number"], utcnow()
    with Session(engine) as session:
        shipment = recording.locked(session, shipped["shipment"])
        for k in range(2):  # two failed attempts: one alert
            at = t0 + timedelta(hours=1 + k)
            recording.record(
                session,
                shipment,
                [event(number, S.ATTEMPT_FAILED, at, f"NH{k}")],
                source="poll",
                now=at,
            )
        lost = event(
            number, S.EXCEPTION, t0 + timedelta(hours=3), "LS", reason=ExceptionReason.LOST
        )
        recorded = recording.record(session, shipment, [lost], source="poll", now=t0)
        assert set(recorded.alerts) == {"exception", "lost"}
        # The carrier's new estimate passes the promised window: late, a flag beside the status.
        assert shipment.promised_end is not None
        beyond = shipment.promised_end + timedelta(days=2)
        eta = event(number, S.EXCEPTION, t0 + timedelta(hours=4), "WX", eta=beyond)
        recording.record(session, shipment, [eta], source="poll", now=t0)
        assert shipment.late and shipment.status == S.EXCEPTION and shipment.eta == beyond
        session.commit()
        alerts = session.exec(select(TrackingAlert.kind, TrackingAlert.detected_at)).all()
    assert sorted(kind for kind, _ in alerts) == ["attempt_failed", "exception", "late", "lost"]
    assert all(at is not None for _, at in alerts)


def test_a_quiet_parcel_is_stalled_then_lost_by_the_sweep(
    shipped: dict[str, Any], engine: Engine, trk_settings: Settings
) -> None:
    number, t0 = shipped["number"], utcnow()
    with Session(engine) as session:
        shipment = recording.locked(session, shipped["shipment"])
        recording.record(
            session, shipment, [event(number, S.IN_TRANSIT, t0, "DF")], source="poll", now=t0
        )
        quiet = {"stalled", "lost"}  # (the passing days also make it late: another alert)
        assert quiet & set(sweeping.sweep(session, t0 + timedelta(hours=47))) == set()
        assert quiet & set(sweeping.sweep(session, t0 + timedelta(hours=49))) == {"stalled"}
        assert quiet & set(sweeping.sweep(session, t0 + timedelta(days=8))) == {"lost"}
        assert sweeping.sweep(session, t0 + timedelta(days=9)) == []
        session.commit()


def sandbox_hook(events: list[dict[str, Any]], secret: str = SECRET) -> tuple[bytes, Headers]:
    body = json.dumps({"events": events}).encode()
    return body, {SIGNATURE_HEADER: sign(body, secret), "Content-Type": "application/json"}


def receipts(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(WebhookReceipt)).one())


def test_webhooks_are_verified_kept_once_and_applied_by_a_worker(
    shipped: dict[str, Any], client: TestClient, engine: Engine, trk_settings: Settings
) -> None:
    number = shipped["number"]
    at = utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
    body, headers = sandbox_hook(
        [
            {
                "id": f"{number}-1",
                "tracking_number": number,
                "code": "PU",
                "at": at,
                "description": "Picked up",
                "location": "Edmonton",
            },
            {"id": "x-1", "tracking_number": "SBX-NOT-OURS", "code": "PU", "at": at},
        ]
    )
    url = "/v1/carriers/sandbox/webhooks"
    accepted = client.post(url, content=body, headers=headers)
    assert accepted.status_code == 202 and accepted.json()["events"] == 2
    first = accepted.json()["receipt"]
    # The carrier's retry, and replays with the header written another way: what was signed (the
    # timestamp and the body) is the same, so each is answered as kept and stored no second time.
    signed_at, digest = (part.split("=", 1)[1] for part in headers[SIGNATURE_HEADER].split(","))
    for header in (
        headers[SIGNATURE_HEADER],
        f"v1={digest},t={signed_at}",
        f"t=0{signed_at}, v1={digest}",
        f"t={signed_at},v1={digest},v1=00",
    ):
        replay = client.post(url, content=body, headers={**headers, SIGNATURE_HEADER: header})
        assert replay.status_code == 200, replay.text
        assert replay.json() == {"receipt": first, "events": 2, "already_kept": True}
    forged = client.post(url, content=body.replace(b"PU", b"DL"), headers=headers)
    assert forged.status_code == 401
    stale = {**headers, SIGNATURE_HEADER: sign(body, SECRET, timestamp=int(time.time()) - 3600)}
    assert client.post(url, content=body, headers=stale).status_code == 401
    garbled, garbled_headers = b"{not json", {SIGNATURE_HEADER: sign(b"{not json", SECRET)}
    assert client.post(url, content=garbled, headers=garbled_headers).status_code == 400
    assert client.post("/v1/carriers/fedup/webhooks", content=body).status_code == 404
    assert receipts(engine) == 1  # only the first, verified delivery was kept

    applied = ingest.apply_pending(engine)
    assert applied is not None and applied.stored == 1 and applied.unknown == ("SBX-NOT-OURS",)
    assert ingest.apply_pending(engine) is None  # a replayed task: nothing left
    assert the_shipment(engine, shipped["shipment"]).status == S.PICKED_UP


def test_aftership_webhooks_in_their_published_shape(
    shipped: dict[str, Any], client: TestClient, engine: Engine, trk_settings: Settings
) -> None:
    """The shop follows its parcels with AfterShip too: its events reach our shipment of the
    same tracking number, whichever carrier carries it."""
    with Session(engine) as session:
        fulfillment = session.get(
            Fulfillment, the_shipment(engine, shipped["shipment"]).fulfillment_id
        )
        assert fulfillment is not None
        followed = following.follow(session, fulfillment, "sandbox", "7023210039414519", utcnow())
        followed_id = followed.id
        session.commit()
    at = utcnow().isoformat()
    checkpoint = {
        "checkpoint_time": at,
        "tag": "Exception",
        "subtag": "Exception_012",
        "message": "Item damaged",
        "city": "Edmonton",
    }
    tracking = {
        "tracking_number": "7023210039414519",
        "slug": "canada-post",
        "tag": "Exception",
        "subtag": "Exception_012",
        "checkpoints": [checkpoint],
    }
    payload = {
        "event": "tracking_update",
        "event_id": "3f645f5e",
        "is_tracking_first_tag": False,
        "ts": int(time.time()),
        "msg": tracking,
    }
    body = json.dumps(payload).encode()
    digest = hmac.new(AFTERSHIP_SECRET.encode(), body, hashlib.sha256).digest()
    headers = {AFTERSHIP_HEADER: base64.b64encode(digest).decode()}
    accepted = client.post("/v1/carriers/aftership/webhooks", content=body, headers=headers)
    assert accepted.status_code == 202, accepted.text
    ingest.apply_pending(engine)
    shipment = the_shipment(engine, followed_id)
    assert (shipment.status, shipment.reason) == (S.EXCEPTION, "damaged")
    again = client.post("/v1/carriers/aftership/webhooks", content=body, headers=headers)
    assert again.status_code == 200 and again.json()["already_kept"] is True  # AfterShip's retry
    assert receipts(engine) == 1
    # A signed body whose time is no number (JSON's NaN) is never within the tolerance.
    timeless = json.dumps(payload | {"ts": float("nan"), "event_id": "other"}).encode()
    signed = hmac.new(AFTERSHIP_SECRET.encode(), timeless, hashlib.sha256).digest()
    nan_headers = {AFTERSHIP_HEADER: base64.b64encode(signed).decode()}
    refused = client.post("/v1/carriers/aftership/webhooks", content=timeless, headers=nan_headers)
    assert refused.status_code == 401 and "tolerance" in refused.json()["detail"]
    assert receipts(engine) == 1


@pytest.mark.parametrize("trouble", [{"down": True}, {"garbage": True}, {"delay_s": 1.0}])
def test_a_carrier_in_trouble_is_retried_then_left_alone_and_nothing_is_lost(
    shipped: dict[str, Any],
    engine: Engine,
    trk_settings: Settings,
    carrier: tuple[str, CarrierState],
    trouble: dict[str, Any],
) -> None:
    url, state = carrier
    httpx.post(f"{url}/sandbox/trouble", json=trouble)
    now = utcnow()
    first = poll(engine, trk_settings, now)
    assert (first.failed_calls, first.events) == (1, 0)
    assert state.calls["/v1/tracking"] == 2  # one call, retried once
    shipment = the_shipment(engine, shipped["shipment"])
    assert shipment.poll_failures == 1 and shipment.next_poll_at is not None
    assert shipment.next_poll_at > now  # waits, but stays followed
    second = poll(engine, trk_settings, shipment.next_poll_at)
    assert second.failed_calls == 1  # the second failure opens the circuit
    with Session(engine) as session:
        health = session.get(CarrierHealth, "sandbox")
        assert health is not None and health.open_until is not None and health.alerted_at
        reopens = health.open_until
    assert poll(engine, trk_settings, reopens - timedelta(seconds=1)).skipped == ["sandbox"]
    httpx.post(f"{url}/sandbox/trouble", json={"down": False, "garbage": False, "delay_s": 0})
    back = poll(engine, trk_settings, reopens + timedelta(seconds=1))
    assert back.events == 1 and back.failed_calls == 0
    shipment = the_shipment(engine, shipped["shipment"])
    assert shipment.status == S.INFO_RECEIVED and shipment.poll_failures == 0


def test_polling_is_often_near_the_door_and_rare_in_transit(trk_settings: Settings) -> None:
    now = utcnow()
    gaps = {
        status: sweeping.next_poll(Shipment(status=status, active=True), now, trk_settings)
        for status in (S.IN_TRANSIT, S.OUT_FOR_DELIVERY)
    }
    assert gaps[S.OUT_FOR_DELIVERY] == now + timedelta(minutes=10)
    assert gaps[S.IN_TRANSIT] == now + timedelta(hours=2)
    fast = trk_settings.model_copy(update={"tracking_poll_scale": 0.1})
    assert sweeping.next_poll(Shipment(status=S.IN_TRANSIT), now, fast) == now + timedelta(
        minutes=12
    )
    assert sweeping.next_poll(Shipment(status=S.DELIVERED, active=False), now, fast) is None


def test_the_rate_limit_spaces_calls_to_a_carrier() -> None:
    slept: list[float] = []
    limit = polling.RateLimit(4.0, sleep=slept.append)
    for _ in range(5):
        limit.wait()
    # The first call goes at once; each next one waits for its quarter-second slot.
    assert slept[0] == pytest.approx(0.25, abs=0.02) and len(slept) == 4
    assert sum(slept) == pytest.approx(0.25 + 0.5 + 0.75 + 1.0, abs=0.05)


def test_a_delivery_that_cannot_be_applied_is_set_aside_and_holds_up_nothing(
    shipped: dict[str, Any], engine: Engine
) -> None:
    number, at = shipped["number"], utcnow()
    good = CarrierEvent(number, S.PICKED_UP, "PU", at, event_id="g-1").as_dict()
    broken = {**good, "event_id": "b-1", "occurred_at": "2026-11-22T10:00:00"}  # no offset
    with Session(engine) as session:
        for k, events in enumerate(([broken], [good])):
            session.add(WebhookReceipt(carrier="sandbox", delivery_id=f"d{k}", events=events))
        session.commit()
    applied = ingest.apply_pending(engine)
    assert applied is not None and applied.stored == 1
    assert the_shipment(engine, shipped["shipment"]).status == S.PICKED_UP
    with Session(engine) as session:
        receipts = session.exec(select(WebhookReceipt).order_by(WebhookReceipt.id)).all()
    assert all(r.processed_at is not None for r in receipts)
    assert receipts[0].note and receipts[0].note.startswith("could not be applied")
    assert receipts[0].events == [broken]  # kept whole for a person to look at


def test_events_for_a_parcel_not_followed_yet_wait_for_it(
    shipped: dict[str, Any], engine: Engine
) -> None:
    at = utcnow()
    early = CarrierEvent("SBX-LATE-1", S.PICKED_UP, "PU", at, event_id="l-1").as_dict()
    with Session(engine) as session:
        session.add(WebhookReceipt(carrier="sandbox", delivery_id="early", events=[early]))
        session.commit()
    assert ingest.apply_pending(engine, now=at) is not None
    assert ingest.apply_pending(engine, now=at) is None  # waiting, not due
    with Session(engine) as session:
        fulfillment = session.get(
            Fulfillment, the_shipment(engine, shipped["shipment"]).fulfillment_id
        )
        assert fulfillment is not None
        late = following.follow(session, fulfillment, "sandbox", "SBX-LATE-1", at).id
        session.commit()
    applied = ingest.apply_pending(engine, now=at + timedelta(minutes=1))
    assert applied is not None and applied.stored == 1 and applied.unknown == ()
    assert the_shipment(engine, late).status == S.PICKED_UP


def test_webhooks_without_a_secret_or_too_large_are_refused(
    shipped: dict[str, Any], client: TestClient, app: FastAPI, trk_settings: Settings
) -> None:
    body, headers = sandbox_hook([], secret="")
    app.state.settings = trk_settings.model_copy(update={"carrier_webhook_secret": ""})
    app.state.carriers = None  # made again from the new settings
    refused = client.post("/v1/carriers/sandbox/webhooks", content=body, headers=headers)
    assert refused.status_code == 401 and "no webhook secret" in refused.json()["detail"]
    huge = b"{" + b" " * 2_100_000 + b"}"
    too_large = client.post("/v1/carriers/sandbox/webhooks", content=huge, headers=headers)
    assert too_large.status_code == 413


def test_cancelling_an_order_stops_following_its_parcel_and_cancels_it_with_the_carrier(
    shipped: dict[str, Any],
    client: TestClient,
    shop: Headers,
    engine: Engine,
    trk_settings: Settings,
    carrier: tuple[str, CarrierState],
) -> None:
    _, state = carrier
    order = shipped["order"]["id"]
    assert client.post(f"/v1/orders/{order}/cancel", headers=shop).status_code == 200
    shipment = the_shipment(engine, shipped["shipment"])
    assert (shipment.status, shipment.active) == (S.CANCELLED, False)
    relay_now(engine, trk_settings)
    assert state.parcels[shipped["number"]].events[-1].code == "CX"


def test_one_poll_cycle_at_a_time_per_carrier(
    shipped: dict[str, Any], engine: Engine, trk_settings: Settings
) -> None:
    now = utcnow()
    assert polling._claim(engine, "sandbox", now, timedelta(minutes=2))  # another cycle
    assert poll(engine, trk_settings, now).skipped == ["sandbox"]
    polling._release(engine, "sandbox")
    assert poll(engine, trk_settings, now).events == 1


def test_a_newer_scan_ends_trouble_and_a_fulfillment_never_moves_back(
    shipped: dict[str, Any], engine: Engine
) -> None:
    number, t0 = shipped["number"], utcnow()
    weather = event(number, S.EXCEPTION, t0, "WX", reason=ExceptionReason.WEATHER)
    moving = event(number, S.IN_TRANSIT, t0 + timedelta(hours=5), "AF")
    with Session(engine) as session:
        shipment = recording.locked(session, shipped["shipment"])
        recording.record(session, shipment, [weather, moving], source="poll", now=t0)
        assert shipment.status == S.IN_TRANSIT and shipment.reason is None
        fulfillment = session.get(Fulfillment, shipment.fulfillment_id)
        assert fulfillment is not None
        done = event(number, S.DELIVERED, t0 + timedelta(hours=9), "DL")
        recording.record(session, shipment, [done], source="poll", now=t0)
        second = following.follow(session, fulfillment, "sandbox", "SBX-SECOND", t0)
        on_its_way = event("SBX-SECOND", S.IN_TRANSIT, t0, "AF")
        recording.record(
            session, recording.locked(session, second.id), [on_its_way], source="poll", now=t0
        )
        assert fulfillment.status == "delivered"  # the second parcel does not take it back
        session.commit()
