"""The dispatcher's page in a real browser: Playwright driving Debian's Chromium."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from fulfill.auth import Scope
from fulfill.config import Settings
from fulfill.dispatch import solving
from fulfill.migrations import upgrade
from fulfill.processes import LiveServer
from tests.dispatch.support import AFTER_CUTOFF, add_van, place_orders, planned
from tests.support import seed_catalog

Headers = dict[str, str]
ARTIFACTS = Path(os.environ.get("FULFILL_TEST_ARTIFACTS", "test-artifacts"))


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One backend is enough here: the page reads the same API on both."""
    url = f"sqlite:///{tmp_path_factory.mktemp('page') / 'fulfill.db'}"
    upgrade(url)
    return url


def test_the_page_draws_a_plan_moves_a_stop_and_replans(
    app: FastAPI,
    client: TestClient,
    admin: Headers,
    shop: Headers,
    engine: Engine,
    settings: Settings,
    make_key: Callable[..., Headers],
    browser: object,
) -> None:
    fast = settings.model_copy(
        update={
            "dispatch_time_limit_s": 1.0,
            "dispatch_engine": "ortools",
            "dispatch_auto_publish": False,
        }
    )
    app.state.settings = fast
    seed_catalog(client, admin, vans=False)
    body = [{"sku": "TEA-1", "on_hand": 500}]
    assert client.put("/v1/nodes/WH1/stock", json=body, headers=admin).status_code == 200
    for code in ("VAN1", "VAN2", "VAN3"):
        add_van(client, admin, code, capacity_parcels=12)
    place_orders(client, shop, 30)
    plan = planned(engine, fast)
    # The worker's part, in a thread: the real planning code, as a Celery task would run it.
    app.state.send_task = lambda name, wave_id: threading.Thread(
        target=solving.plan_wave, args=(engine, wave_id, fast, AFTER_CUTOFF), daemon=True
    ).start()
    key = make_key(Scope.DISPATCHER, name="desk")["Authorization"].removeprefix("Bearer ")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with LiveServer(app) as server:
        page = browser.new_page(viewport={"width": 1366, "height": 800})  # type: ignore[attr-defined]
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{server.url}/dispatch#key={key}")
        page.wait_for_selector("svg#map polyline.route")
        assert page.locator("svg#map polyline.route").count() == plan.vans_used
        assert page.locator("svg#map circle.stop").count() == 30
        assert page.locator("#timeline .lane").count() == plan.vans_used
        assert page.locator('[data-figure="Plan"]').inner_text() == "v1 · draft"
        assert "cutoff 10:00" in page.locator(".wave").first.inner_text()  # Edmonton time

        # Move the first stop of the first van's route to the end of another van's route.
        first = page.locator("#timeline .lane").first
        stop_id = first.locator(".tick").first.get_attribute("data-stop")
        first.locator(".tick").first.click()
        other = page.locator("#timeline .lane").nth(1).get_attribute("data-van")
        page.select_option("#move-van", other)
        page.check("#move-force")
        page.click("#move")
        page.wait_for_function(
            "document.querySelector('[data-figure=\"Plan\"]').innerText.startsWith('v2')"
        )
        moved_lane = page.locator(f'#timeline .lane[data-van="{other}"]')
        assert moved_lane.locator(f'.tick[data-stop="{stop_id}"]').count() == 1

        # Re-plan: the page asks, the worker plans, the page shows the new version by itself.
        page.click("#replan")
        page.wait_for_function(
            "document.querySelector('[data-figure=\"Plan\"]').innerText.startsWith('v3')",
            timeout=30_000,
        )
        assert page.locator("svg#map circle.stop").count() == 30
        page.screenshot(path=str(ARTIFACTS / "dispatch.png"), full_page=True)
        assert errors == []
    assert (ARTIFACTS / "dispatch.png").stat().st_size > 10_000
