"""The database in trouble, as a real fault: a row held by a stuck transaction, a server that is
not there. The request that meets it is a 503 with Retry-After that changed nothing; the rest of
the API goes on."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from fulfill.app import create_app
from fulfill.config import Settings
from fulfill.processes import free_port
from tests.support import MORNING, order_body, seed_catalog

Headers = dict[str, str]


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["type"].endswith("/database-unavailable")


def test_a_stock_row_held_past_the_lock_timeout_fails_one_order_not_the_api(
    settings: Settings, engine: Engine, admin: Headers, shop: Headers
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite locks the whole file, not a row: its writers queue for it instead")
    app = create_app(settings.model_copy(update={"db_lock_timeout_ms": 300}))
    app.state.clock = lambda: MORNING
    with TestClient(app, raise_server_exceptions=False) as client:
        seed_catalog(client, admin)
        with engine.connect() as stuck:
            held = stuck.begin()
            stuck.execute(text("SELECT * FROM stock FOR UPDATE"))  # and then it hangs
            assert_unavailable(client.post("/v1/orders", json=order_body(), headers=shop))
            assert client.get("/healthz").status_code == 200
            assert client.get("/readyz").status_code == 200
            assert client.get("/v1/stock", params={"sku": "TEA-1"}, headers=shop).status_code == 200
            held.rollback()
        assert client.get("/v1/orders", headers=shop).json()["items"] == []  # nothing was kept
        assert client.post("/v1/orders", json=order_body(), headers=shop).status_code == 201


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_a_database_that_is_not_there_is_a_503_to_retry(tmp_path: Path, backend: str) -> None:
    url = (
        f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/fulfill?connect_timeout=2"
        if backend == "postgresql"
        else "sqlite:////nonexistent/fulfill/fulfill.db"
    )
    app = create_app(Settings(data_dir=tmp_path, database_url=url))
    with TestClient(app, raise_server_exceptions=False) as client:
        headers = {"Authorization": "Bearer ffk_" + "x" * 43}
        assert_unavailable(client.get("/v1/orders", headers=headers))
        assert_unavailable(client.post("/v1/orders", json=order_body(), headers=headers))
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").status_code == 200
