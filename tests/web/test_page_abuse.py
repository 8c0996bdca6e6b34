"""The public tracking page against abuse: a rate limit no forged header steps around and every
API process shares, tokens kept out of logs, a page no one may frame or sniff, and no
"report a problem" posted from another site."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import redis
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from fulfill.app import create_app
from fulfill.config import Settings
from fulfill.notify.models import Case
from fulfill.processes import LiveServer, free_port
from tests.notify.test_notices import place, token_of
from tests.support import MORNING, PATIENCE_S, seed_catalog

Headers = dict[str, str]


@pytest.fixture
def token(client: TestClient, admin: Headers, shop: Headers, engine: Engine) -> str:
    seed_catalog(client, admin)
    return token_of(engine, place(client, shop))


def limited_app(settings: Settings, **update: object) -> FastAPI:
    app = create_app(settings.model_copy(update={"tracking_page_rate": "3/minute", **update}))
    app.state.clock = lambda: MORNING
    return app


def test_a_forged_forwarded_for_does_not_step_around_the_limit(
    settings: Settings, token: str
) -> None:
    with LiveServer(limited_app(settings)) as server, httpx.Client(base_url=server.url) as http:
        answers = [
            http.get(f"/t/{token}.json", headers={"X-Forwarded-For": f"203.0.113.{n}"})
            for n in range(4)
        ]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]


def test_behind_a_trusted_proxy_each_client_has_its_own_limit(
    settings: Settings, token: str
) -> None:
    app = limited_app(settings, trusted_proxies=("127.0.0.1",))
    with LiveServer(app) as server, httpx.Client(base_url=server.url) as http:
        ada = [
            http.get(f"/t/{token}.json", headers={"X-Forwarded-For": "203.0.113.7"})
            for _ in range(4)
        ]
        # What the client wrote is further left; the proxy appended the address it saw.
        bob = http.get(f"/t/{token}.json", headers={"X-Forwarded-For": "203.0.113.7, 198.51.100.2"})
    assert [a.status_code for a in ada] == [200, 200, 200, 429]
    assert bob.status_code == 200


def test_every_api_process_counts_against_one_limit(
    settings: Settings, token: str, redis_url: str
) -> None:
    storage = redis_url.rsplit("/", 1)[0] + "/15"  # a database of its own, emptied first
    redis.Redis.from_url(storage).flushdb()
    shared = {"rate_limit_storage": storage}
    first, second = limited_app(settings, **shared), limited_app(settings, **shared)
    with TestClient(first) as a, TestClient(second) as b:
        statuses = [client.get(f"/t/{token}.json").status_code for client in (a, b, a, b)]
    assert statuses == [200, 200, 200, 429]


def test_pages_may_not_be_framed_or_sniffed_and_say_where_they_may_post(
    client: TestClient, token: str
) -> None:
    page = client.get(f"/t/{token}")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "form-action 'self'" in policy
    assert "default-src 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"


def test_a_problem_posted_from_another_site_opens_no_case(
    client: TestClient, token: str, engine: Engine
) -> None:
    form = {"kind": "damaged", "message": "Box crushed"}
    for foreign in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        refused = client.post(
            f"/t/{token}/problems", data=form, headers=foreign, follow_redirects=False
        )
        assert refused.status_code == 403, refused.text
    with Session(engine) as session:
        assert session.exec(select(func.count(col(Case.id)))).one() == 0
    own = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    reported = client.post(f"/t/{token}/problems", data=form, headers=own, follow_redirects=False)
    assert reported.status_code == 303


@contextmanager
def logged_server(app: FastAPI) -> Iterator[str]:
    """A real uvicorn with its access log on and its lines sent to the root logger."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=True)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + PATIENCE_S
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_tokens_are_kept_out_of_the_access_log(
    app: FastAPI, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="uvicorn.access"), logged_server(app) as url:
        assert httpx.get(f"{url}/t/{token}").status_code == 200
        assert httpx.get(f"{url}/t/{token}.json").status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert len(lines) == 2 and all("/t/[token]" in line for line in lines)
    assert not any(token in line for line in lines)
