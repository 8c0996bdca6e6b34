from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from fulfill.db import utcnow
from fulfill.outbox.models import OutboxEvent, OutboxStatus
from fulfill.outbox.service import claim_due, relay, replay_dead
from fulfill.outbox.webhook import webhook_handler
from fulfill_carriers import SIGNATURE_HEADER, verify
from tests.support import PATIENCE_S, WebhookReceiver, order_body, seed_catalog

Headers = dict[str, str]
LEASE = timedelta(minutes=5)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


def events(engine: Engine, topic: str | None = "order.created") -> list[OutboxEvent]:
    """The outbox's rows of ``topic`` (of every topic if None)."""
    statement = select(OutboxEvent).order_by(col(OutboxEvent.id))
    if topic is not None:
        statement = statement.where(OutboxEvent.topic == topic)
    with Session(engine) as session:
        return list(session.exec(statement))


def run_relay(engine: Engine, url: str, max_attempts: int = 5) -> None:
    handlers = {"order.created": [webhook_handler(url, "whsec")]}
    with Session(engine, expire_on_commit=False) as session:
        relay(session, handlers, limit=10, lease=LEASE, max_attempts=max_attempts)


def test_an_order_and_its_event_commit_together(
    client: TestClient, admin: Headers, shop: Headers, engine: Engine
) -> None:
    seed_catalog(client, admin)
    order = client.post("/v1/orders", json=order_body(), headers=shop).json()
    refused = order_body("web-2", lines=[{"sku": "TEA-1", "quantity": 99}])
    assert client.post("/v1/orders", json=refused, headers=shop).status_code == 409
    rows = {e.topic: e for e in events(engine, None)}
    assert sorted(rows) == ["notice.send", "order.created"]  # and the customer's confirmation
    assert rows["order.created"].payload["id"] == order["id"]
    assert {e.status for e in rows.values()} == {OutboxStatus.PENDING}


def test_the_relay_delivers_a_signed_event_once(
    client: TestClient, admin: Headers, shop: Headers, engine: Engine, receiver: WebhookReceiver
) -> None:
    seed_catalog(client, admin)
    order = client.post("/v1/orders", json=order_body(), headers=shop).json()
    run_relay(engine, receiver.url)
    run_relay(engine, receiver.url)
    assert len(receiver.received) == 1
    headers, body = receiver.received[0]
    verify(body, headers[SIGNATURE_HEADER], "whsec")
    envelope = json.loads(body)
    assert (envelope["type"], envelope["data"]["id"]) == ("order.created", order["id"])
    assert headers["Fulfill-Event-Id"] == envelope["id"]
    assert events(engine)[0].status == OutboxStatus.SENT


def test_a_failing_receiver_is_retried_with_backoff_then_given_up(
    client: TestClient, admin: Headers, shop: Headers, engine: Engine
) -> None:
    seed_catalog(client, admin)
    client.post("/v1/orders", json=order_body(), headers=shop)
    with WebhookReceiver(statuses=(500,)) as failing:
        run_relay(engine, failing.url, max_attempts=2)
        row = events(engine)[0]
        assert (row.status, row.attempts) == (OutboxStatus.PENDING, 1)
        assert row.last_error is not None and "500" in row.last_error
        run_relay(engine, failing.url, max_attempts=2)  # not due yet: nothing happens
        assert len(failing.received) == 1
        _make_due(engine)
        run_relay(engine, failing.url, max_attempts=2)
        assert events(engine)[0].status == OutboxStatus.DEAD
    with Session(engine) as session:
        assert replay_dead(session, [row.id or 0]) == 1
        session.commit()
    with WebhookReceiver() as healthy:
        run_relay(engine, healthy.url)
        assert len(healthy.received) == 1
    assert events(engine)[0].status == OutboxStatus.SENT


def test_a_claimed_event_is_not_claimed_again_until_its_lease_ends(
    client: TestClient, admin: Headers, shop: Headers, engine: Engine
) -> None:
    seed_catalog(client, admin)
    client.post("/v1/orders", json=order_body(), headers=shop)
    with Session(engine, expire_on_commit=False) as session:
        assert len(claim_due(session, 10, LEASE)) == 2  # the order's event and its notice
        assert claim_due(session, 10, LEASE) == []  # a second worker finds nothing
    _make_due(engine)  # the first worker died: the lease ran out
    with Session(engine, expire_on_commit=False) as session:
        reclaimed = claim_due(session, 10, LEASE)
    assert [r.attempts for r in reclaimed] == [2, 2]


def _make_due(engine: Engine) -> None:
    with Session(engine) as session:
        for row in session.exec(select(OutboxEvent)):
            row.next_run_at = utcnow() - timedelta(seconds=1)
            session.add(row)
        session.commit()


def test_a_worker_that_dies_mid_batch_sends_again_only_what_it_was_sending(
    client: TestClient, admin: Headers, shop: Headers, engine: Engine, receiver: WebhookReceiver
) -> None:
    seed_catalog(client, admin)
    for n in range(3):
        assert (
            client.post("/v1/orders", json=order_body(f"web-{n}"), headers=shop).status_code == 201
        )
    deliveries = multiprocessing.get_context("fork").Value("i", 0)

    def relay_and_die_on_the_third() -> None:
        engine.dispose(close=False)  # the parent's connections stay the parent's

        def count(_: OutboxEvent) -> None:
            with deliveries.get_lock():
                deliveries.value += 1
                if deliveries.value == 3:
                    os._exit(17)  # killed after the third webhook went out, before recording it

        handlers = {"order.created": [webhook_handler(receiver.url, "whsec"), count]}
        with Session(engine, expire_on_commit=False) as session:
            relay(session, handlers, limit=10, lease=LEASE, max_attempts=5)

    worker = multiprocessing.get_context("fork").Process(target=relay_and_die_on_the_third)
    worker.start()
    worker.join(timeout=PATIENCE_S)
    assert worker.exitcode == 17
    assert [e.status for e in events(engine)] == [OutboxStatus.SENT] * 2 + [OutboxStatus.PENDING]
    with Session(engine) as session:  # the dead worker's lease runs out
        session.execute(update(OutboxEvent).values(next_run_at=utcnow() - timedelta(seconds=1)))
        session.commit()
    run_relay(engine, receiver.url)
    sent = [json.loads(body)["id"] for _, body in receiver.received]
    assert len(sent) == 4 and len(set(sent)) == 3 and sent[2] == sent[3]  # only the third again
    assert {e.status for e in events(engine)} == {OutboxStatus.SENT}
