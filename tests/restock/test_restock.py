"""Forecasts suited to each demand pattern, and suggestions from the order history."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fulfill.restock.forecast import Forecast, cover, croston_sba, forecast
from tests.support import MORNING, order_body, seed_catalog

Headers = dict[str, str]


def test_each_pattern_gets_its_method() -> None:
    smooth = [4.0, 5, 3, 4, 6, 5, 4, 5, 3, 4, 5, 4]
    assert forecast(smooth).method == "ses"
    assert 3.5 < forecast(smooth).daily < 5
    # A steady 3 units every fourth day: intermittent, Croston's rate is 3/4 a day, less its bias.
    intermittent = [0.0, 0, 0, 3] * 40
    f = forecast(intermittent)
    assert f.method == "croston"
    assert f.daily == pytest.approx(0.75 * (1 - 0.2 / 2), rel=0.02)
    assert croston_sba(intermittent[3:], 0.2) == f.daily  # from its first sale
    # Sizes that vary a lot on rare days: lumpy, TSB.
    lumpy = [0.0, 0, 12, 0, 0, 0, 1, 0, 0, 9, 0, 0, 0, 1, 0, 0, 15, 0, 0, 1] * 2
    assert forecast(lumpy).method == "tsb"
    assert forecast([0.0] * 10) == Forecast(0.0, 0.0, "none")


def test_a_sku_that_stopped_selling_fades_under_tsb_but_not_under_croston() -> None:
    stopped = [0.0, 0, 10, 0, 1, 0, 0, 14, 0, 0, 2] + [0.0] * 30
    assert forecast(stopped).method == "tsb"
    assert forecast(stopped).daily < 0.2 * croston_sba(stopped, 0.2)


def test_cover_grows_with_the_service_level_and_the_lead_time() -> None:
    f = Forecast(daily=2.0, sigma=1.0, method="ses")
    low, high = cover(f, 4, 7, 0.9), cover(f, 4, 7, 0.99)
    assert high.safety_stock > low.safety_stock
    assert cover(f, 4, 7, 0.95).safety_stock == 4  # 1.645 * 1 * 2 = 3.29, rounded up
    assert cover(f, 4, 7, 0.95).reorder_point == 12  # 8 + 3.29
    assert cover(f, 4, 7, 0.95).order_up_to == 26  # + 14 for a week


def test_a_node_running_short_gets_a_transfer_then_the_supplier_for_the_rest(
    client: TestClient, app: FastAPI, admin: Headers, shop: Headers
) -> None:
    seed_catalog(client, admin)
    client.put("/v1/nodes/WH1/stock", json=[{"sku": "TEA-1", "on_hand": 100}], headers=admin)
    client.put("/v1/nodes/ST1/stock", json=[{"sku": "TEA-1", "on_hand": 60}], headers=admin)
    # Three weeks of two teas a day, every one from WH1, downtown.
    for day in range(21):
        app.state.clock = lambda day=day: MORNING - timedelta(days=21 - day)
        body = order_body(f"web-{day}", service_level="next_day")
        assert client.post("/v1/orders", json=body, headers=shop).status_code == 201
    app.state.clock = lambda: MORNING
    assert client.get("/v1/restock", headers=shop).json() == {"run_at": None, "items": []}
    client.put("/v1/nodes/WH1/stock", json=[{"sku": "TEA-1", "on_hand": 43}], headers=admin)
    refreshed = client.post("/v1/restock/refresh", headers=admin)
    assert refreshed.status_code == 200, refreshed.text
    items = client.get("/v1/restock", params={"node": "WH1"}, headers=shop).json()["items"]
    # 43 on hand less 42 reserved: 1 left against 2 a day; ST1 sells none and holds 60.
    [transfer] = items
    assert (transfer["kind"], transfer["from_node"], transfer["method"]) == (
        "transfer",
        "ST1",
        "ses",
    )
    assert transfer["available"] == 1 and transfer["daily_demand"] == pytest.approx(2.0)
    # Back up to a lead time and a week of demand, plus the safety stock: 2 + 14 + 0 - 1.
    assert (transfer["reorder_point"], transfer["quantity"]) == (2, 15)
    assert "reorder point" in transfer["reason"]
    assert client.post("/v1/restock/refresh", headers=shop).status_code == 403
