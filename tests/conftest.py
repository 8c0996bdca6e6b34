"""Shared fixtures: real databases (SQLite and PostgreSQL), real Redis, the app, API keys.

Every test that takes ``db_url`` runs once per backend. PostgreSQL and Redis come from
``FULFILL_TEST_POSTGRES_URL`` / ``FULFILL_TEST_REDIS_URL`` when set (CI sets them), otherwise
throwaway servers are started from the local binaries. Without either, those tests skip locally
and fail under CI (``CI=true``), where a missing server is a broken setup, not a reason to skip.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlmodel import Session

import fulfill_devservers as devservers
from fulfill import simclock
from fulfill.app import create_app
from fulfill.auth import Scope, create_key
from fulfill.config import Settings
from fulfill.db import engine_for
from fulfill.migrations import upgrade
from fulfill.models import metadata
from fulfill.processes import LiveServer
from fulfill.wiring import wire
from tests.support import MORNING, Inbox, seed_catalog, smtp_server

UNDER_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
CHROMIUM = os.environ.get("FULFILL_TEST_CHROMIUM", "/usr/bin/chromium")
# As root in a container: no sandbox; and no background traffic to a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# One clock for the whole suite: this process and every worker, beat and server it starts read it
# (``FULFILL_CLOCK_FILE`` is inherited). Each test starts at MORNING with the clock running, so no
# test sees today's date, and a test that needs another hour moves the clock for every process.
_clock_dir = tempfile.mkdtemp(prefix="fulfill-clock-")
atexit.register(shutil.rmtree, _clock_dir, ignore_errors=True)
os.environ[simclock.ENV] = str(Path(_clock_dir) / "clock")
SUITE_CLOCK = simclock.SharedClock(Path(os.environ[simclock.ENV]))
wire()  # tests call the domains directly, as a worker does


@pytest.fixture(autouse=True)
def clock() -> simclock.SharedClock:
    """The suite's clock, set to MORNING and running; ``clock.set(at, 1.0)`` moves every process."""
    SUITE_CLOCK.set(MORNING, 1.0)
    return SUITE_CLOCK


def server_missing(reason: str) -> None:
    if UNDER_CI:
        pytest.fail(f"{reason}: under CI the real server is required")
    pytest.skip(reason)


def _server(
    variable: str, start: Callable[[Path], AbstractContextManager[str]], base: Path
) -> Iterator[str]:
    """The server named by ``variable``, or a throwaway one; skip (fail under CI) if neither."""
    configured = os.environ.get(variable)
    if configured:
        yield configured
        return
    try:
        with start(base) as url:
            yield url
    except devservers.ServerUnavailable as exc:
        server_missing(str(exc))


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _server(
        "FULFILL_TEST_POSTGRES_URL", devservers.temporary_postgres, tmp_path_factory.mktemp("pg")
    )


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _server(
        "FULFILL_TEST_REDIS_URL", devservers.temporary_redis, tmp_path_factory.mktemp("redis")
    )


def fresh_database_url(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """An empty database of ``backend``, not yet migrated."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'fulfill.db'}"
    server = request.getfixturevalue("postgres_server")
    return devservers.create_database(server, f"fulfill_test_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated database, once per backend and session."""
    url = fresh_database_url(request.param, request, tmp_path_factory)
    upgrade(url)
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = engine_for(db_url)
    yield engine
    _empty_all_tables(engine)


def _empty_all_tables(engine: Engine) -> None:
    tables = [t.name for t in reversed(metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=db_url)


@pytest.fixture
def app(settings: Settings, engine: Engine) -> FastAPI:
    app = create_app(settings)
    app.state.clock = lambda: MORNING
    return app


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def make_key(engine: Engine) -> Callable[..., dict[str, str]]:
    """Create a key and return the headers that send it."""

    def make(
        *scopes: Scope, name: str | None = None, storefront: str | None = None
    ) -> dict[str, str]:
        if Scope.STOREFRONT in scopes and storefront is None:
            storefront = name  # the tests' shops are named for their storefront
        with Session(engine) as session:
            key = create_key(session, list(scopes), name, storefront=storefront)
            session.commit()
        return {"Authorization": f"Bearer {key}"}

    return make


@pytest.fixture
def admin(make_key: Callable[..., dict[str, str]]) -> dict[str, str]:
    return make_key(Scope.ADMIN, name="ops")


@pytest.fixture
def shop(make_key: Callable[..., dict[str, str]]) -> dict[str, str]:
    return make_key(Scope.STOREFRONT, name="shop")


@pytest.fixture
def live_server(app: FastAPI) -> Iterator[LiveServer]:
    with LiveServer(app) as server:
        yield server


@pytest.fixture
def browser() -> Iterator[object]:
    """Debian's Chromium, driven by Playwright."""
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        server_missing(f"no Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, env=devservers.real_clock_env()
        )
        yield browser
        browser.close()


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    """A real SMTP server on 127.0.0.1: its port, and the messages it took."""
    with smtp_server() as server:
        yield server


@pytest.fixture
def http(live_server: LiveServer) -> Iterator[httpx.Client]:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    with httpx.Client(base_url=live_server.url, timeout=60, limits=limits) as client:
        yield client


# Dispatch: planning settings for tests, the dispatcher and the drivers, a stocked catalog.


@pytest.fixture
def dispatch_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "dispatch_time_limit_s": 1.0,
            "dispatch_engine": "ortools",
            "dispatch_auto_publish": False,
        }
    )


@pytest.fixture
def dispatcher(make_key: Callable[..., dict[str, str]]) -> dict[str, str]:
    return make_key(Scope.DISPATCHER, name="desk")


@pytest.fixture
def driver(make_key: Callable[..., dict[str, str]]) -> dict[str, str]:
    return make_key(Scope.CARRIER, name="vans")


@pytest.fixture
def seeded(client: TestClient, admin: dict[str, str]) -> TestClient:
    """The test catalog without vans, and plenty of stock at WH1."""
    seed_catalog(client, admin, vans=False)
    body = [{"sku": "TEA-1", "on_hand": 500}, {"sku": "MUG-1", "on_hand": 500}]
    assert client.put("/v1/nodes/WH1/stock", json=body, headers=admin).status_code == 200
    return client
