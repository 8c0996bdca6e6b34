"""A worker and a Redis that goes away: it rides out an outage, and says so when it cannot."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path

from sqlalchemy import Engine

import fulfill_devservers as devservers
from fulfill import processes
from fulfill.app import create_app
from fulfill.config import Settings
from tests.conftest import server_missing
from tests.support import MORNING, PATIENCE_S, WebhookReceiver
from tests.test_worker import assert_delivered_once, fulfill_process, place_orders, service_env


@contextmanager
def redis_on(port: int, base: Path) -> Iterator[str]:
    try:
        with devservers.temporary_redis(base, port) as url:
            yield url
    except devservers.ServerUnavailable as exc:
        server_missing(str(exc))


def worker(env: dict[str, str], log: Path) -> AbstractContextManager[subprocess.Popen[bytes]]:
    return fulfill_process(["worker", "--concurrency=1"], env, log)


def wait_for_line(log: Path, text: str) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while text not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"no {text!r} in: {log.read_text()[-3000:]}"
        time.sleep(0.1)


def test_a_worker_rides_out_a_redis_outage_and_relays_what_came_after(
    db_url: str, tmp_path: Path, engine: Engine
) -> None:
    port, log, base = processes.free_port(), tmp_path / "worker.log", tmp_path / "redis"
    settings = Settings(
        data_dir=tmp_path, database_url=db_url, broker_url=f"redis://127.0.0.1:{port}/0"
    )
    app = create_app(settings)
    app.state.clock = lambda: MORNING
    # No beat: only a worker that reconnected can take the kicks sent after the outage.
    with WebhookReceiver() as receiver, ExitStack() as workers:
        env = service_env(settings, receiver) | {"FULFILL_OUTBOX_SWEEP_S": "3600"}
        with redis_on(port, base):
            process = workers.enter_context(worker(env, log))
            wait_for_line(log, "ready.")
        wait_for_line(log, "Connection to broker lost")
        with redis_on(port, base):
            order_ids = place_orders(app, engine, 2)
            assert_delivered_once(receiver, engine, order_ids)
        assert process.poll() is None


def test_a_worker_that_cannot_reach_redis_again_exits_non_zero(db_url: str, tmp_path: Path) -> None:
    port, log = processes.free_port(), tmp_path / "worker.log"
    settings = Settings(
        data_dir=tmp_path, database_url=db_url, broker_url=f"redis://127.0.0.1:{port}/0"
    )
    with WebhookReceiver() as receiver, ExitStack() as workers:
        env = service_env(settings, receiver) | {"FULFILL_BROKER_RETRIES": "1"}
        with redis_on(port, tmp_path / "redis"):
            process = workers.enter_context(worker(env, log))
            wait_for_line(log, "ready.")
        # Celery itself ends with status 0 here: a supervisor restarting on failure would not.
        assert process.wait(timeout=PATIENCE_S) == 1
    assert "the worker stopped without being asked to" in log.read_text()
