"""Real Celery workers in their own processes: on Redis, and on the embedded broker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from fulfill import embedded_broker
from fulfill.app import create_app
from fulfill.auth import Scope, create_key
from fulfill.config import Settings
from fulfill.dispatch.models import Plan, PlanStatus, Wave, WaveStatus
from fulfill.outbox.models import OutboxEvent, OutboxStatus
from fulfill.simclock import SharedClock
from fulfill.worker import make_celery
from fulfill_carriers import SIGNATURE_HEADER, verify
from tests.support import MORNING, PATIENCE_S, WebhookReceiver, order_body, seed_catalog


@contextmanager
def fulfill_process(
    command: list[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "fulfill", *command],
            env=os.environ | env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def service_env(settings: Settings, receiver: WebhookReceiver) -> dict[str, str]:
    env = {
        "FULFILL_DATA_DIR": str(settings.data_dir),
        "FULFILL_DATABASE_URL": settings.resolved_database_url,
        "FULFILL_EVENTS_WEBHOOK_URL": receiver.url,
        "FULFILL_EVENTS_WEBHOOK_SECRET": "whsec",
        "FULFILL_OUTBOX_SWEEP_S": "1",
    }
    if settings.broker_url:
        env["FULFILL_BROKER_URL"] = settings.broker_url
    return env


def place_orders(app: FastAPI, engine: Engine, count: int) -> list[str]:
    with Session(engine) as session:
        admin = {"Authorization": f"Bearer {create_key(session, [Scope.ADMIN])}"}
        session.commit()
    with TestClient(app) as client:
        seed_catalog(client, admin)
        return [
            client.post("/v1/orders", json=order_body(f"web-{n}"), headers=admin).json()["id"]
            for n in range(count)
        ]


def assert_delivered_once(receiver: WebhookReceiver, engine: Engine, order_ids: list[str]) -> None:
    receiver.wait_for(len(order_ids))
    _wait_until_all_sent(engine)  # the receiver answers before the relay records the outcome
    delivered = []
    for headers, body in receiver.received:
        verify(body, headers[SIGNATURE_HEADER], "whsec")
        delivered.append(json.loads(body)["data"]["id"])
    assert sorted(delivered) == sorted(order_ids)


def _wait_until_all_sent(engine: Engine, timeout_s: float = PATIENCE_S) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        with Session(engine) as session:
            statuses = {e.status for e in session.exec(select(OutboxEvent))}
        if statuses == {OutboxStatus.SENT}:
            return
        assert time.monotonic() < deadline, f"outbox statuses still {statuses}"
        time.sleep(0.1)


def test_a_worker_on_redis_relays_events_as_soon_as_they_commit(
    db_url: str, redis_url: str, tmp_path: Path, engine: Engine
) -> None:
    settings = Settings(data_dir=tmp_path, database_url=db_url, broker_url=redis_url)
    app = create_app(settings)
    app.state.clock = lambda: MORNING
    with WebhookReceiver() as receiver:
        env = service_env(settings, receiver) | {"FULFILL_OUTBOX_SWEEP_S": "3600"}
        with fulfill_process(["worker", "--concurrency=1"], env, tmp_path / "worker.log"):
            # No beat runs: only the kick sent after each commit can bring these out.
            order_ids = place_orders(app, engine, 3)
            assert_delivered_once(receiver, engine, order_ids)


def test_on_the_embedded_broker_beat_sweeps_what_no_kick_announced(
    db_url: str, tmp_path: Path, engine: Engine
) -> None:
    settings = Settings(data_dir=tmp_path, database_url=db_url)
    assert settings.is_embedded_broker
    app = create_app(settings)
    app.state.clock = lambda: MORNING
    app.state.kick_outbox = lambda: None  # as if the broker was unreachable at commit time
    order_ids = place_orders(app, engine, 2)
    with WebhookReceiver() as receiver:
        env = service_env(settings, receiver)
        with (
            fulfill_process(["worker", "--concurrency=1"], env, tmp_path / "worker.log"),
            fulfill_process(["beat"], env, tmp_path / "beat.log"),
        ):
            assert_delivered_once(receiver, engine, order_ids)


def test_at_the_cutoff_beat_and_a_worker_close_plan_and_publish_the_wave(
    db_url: str, tmp_path: Path, engine: Engine, clock: SharedClock
) -> None:
    """The whole dispatch chain on real processes: orders placed before the 10:00 cutoff (of
    18 Nov), then the clock of every process moved past it: beat's sweep closes the wave, a
    worker plans it on the planning queue, and the plan made at the cutoff is published."""
    settings = Settings(data_dir=tmp_path, database_url=db_url)
    app = create_app(settings)
    app.state.clock = lambda: MORNING
    with Session(engine) as session:
        admin = {"Authorization": f"Bearer {create_key(session, [Scope.ADMIN])}"}
        session.commit()
    with TestClient(app) as client:
        seed_catalog(client, admin, vans=False)
        van = {
            "code": "VAN1",
            "node": "WH1",
            "capacity_parcels": 20,
            "capacity_kg": 200,
            "shift_start": "09:00",
            "shift_end": "19:00",
        }
        assert client.post("/v1/vans", json=van, headers=admin).status_code == 201
        orders = [
            client.post("/v1/orders", json=order_body(f"w-{n}"), headers=admin) for n in range(3)
        ]
        assert all(o.status_code == 201 for o in orders)
    clock.set(MORNING + timedelta(hours=2), 1.0)  # 10:30 in Edmonton
    env = {
        "FULFILL_DATA_DIR": str(tmp_path),
        "FULFILL_DATABASE_URL": db_url,
        "FULFILL_DISPATCH_SWEEP_S": "1",
        "FULFILL_DISPATCH_TIME_LIMIT_S": "1",
    }
    with (
        fulfill_process(["worker", "--concurrency=1"], env, tmp_path / "worker.log"),
        fulfill_process(["beat"], env, tmp_path / "beat.log"),
    ):
        deadline = time.monotonic() + PATIENCE_S
        while True:
            with Session(engine) as session:
                plans = session.exec(select(Plan)).all()
            if plans and plans[0].status == PlanStatus.PUBLISHED:
                break
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-3000:]
            time.sleep(0.2)
    assert [(p.version, p.origin, p.stops, p.unassigned) for p in plans] == [(1, "cutoff", 3, 0)]
    with Session(engine) as session:
        wave = session.exec(select(Wave)).one()
        assert (wave.status, wave.planned_version) == (WaveStatus.PUBLISHED, 1)


def test_the_embedded_broker_shows_a_message_only_once_it_is_written_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    celery = make_celery(Settings(data_dir=tmp_path, broker_url=None))
    seen_while_writing: list[int] = []
    rename = os.replace

    def rename_after_a_look(partial: Path, final: Path) -> None:
        # A reader polling between the write and the rename: kombu's own transport would hand
        # it the file, possibly still empty (celery/kombu#1551).
        seen_while_writing.append(channel._size("fulfill"))
        rename(partial, final)

    monkeypatch.setattr(embedded_broker.os, "replace", rename_after_a_look)
    with celery.connection_for_write() as connection:
        channel = connection.default_channel
        assert isinstance(channel, embedded_broker.Channel)
        channel._put("fulfill", {"body": "hello", "headers": {}})
        assert seen_while_writing == [0]
        assert channel._size("fulfill") == 1
        assert channel._get("fulfill") == {"body": "hello", "headers": {}}
    assert list((tmp_path / "broker" / "queue").iterdir()) == []
