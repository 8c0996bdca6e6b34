"""Hostile and careless input, as found from outside: each class is a clear 4xx problem that
changes nothing, on both backends, never a 500."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support import order_body

Headers = dict[str, str]
VAN = {
    "code": "VAN1",
    "node": "WH1",
    "capacity_parcels": 40,
    "capacity_kg": 300,
    "shift_start": "09:00",
    "shift_end": "19:00",
}


def refused(response: Any, status: int = 422) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status and problem["detail"]
    return problem


def test_ids_past_64_bits_name_no_row(seeded: TestClient, admin: Headers) -> None:
    huge = 2**64 + 1
    for path in (f"/v1/waves/{huge}", f"/v1/plans/{huge}", f"/v1/plans/{huge}/geojson"):
        refused(seeded.get(path, headers=admin))
    refused(seeded.post("/v1/outbox/replay", json={"ids": [huge]}, headers=admin))
    event = {
        "id": "e1",
        "type": "position",
        "van": "VAN1",
        "at": "2026-11-18T16:00:00Z",
        "lat": 53.5,
        "lon": -113.5,
        "wave": huge,
    }
    refused(seeded.post("/v1/driver-events", json=event, headers=admin))


@pytest.mark.parametrize(
    "moment",
    ["2026-11-18T00:00:00", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+01:00", "NaN"],
)
def test_a_datetime_without_its_offset_or_out_of_range_is_refused(
    seeded: TestClient, admin: Headers, moment: str
) -> None:
    refused(seeded.get("/v1/orders", params={"created_from": moment}, headers=admin))
    refused(seeded.get("/v1/metrics/service", params={"since": moment}, headers=admin))
    cart = {
        "destination": {"lat": 53.54, "lon": -113.49},
        "at": moment,
        "lines": [{"sku": "TEA-1", "quantity": 1}],
    }
    refused(seeded.post("/v1/promises", json=cart, headers=admin))


@pytest.mark.parametrize("zone", ["localtime", "posixrules", "a" * 300, "../../etc/passwd", "EST5"])
def test_a_timezone_that_is_no_iana_name_is_refused(
    seeded: TestClient, admin: Headers, zone: str
) -> None:
    node = {
        "code": "ST9",
        "name": "Store",
        "kind": "store",
        "lat": 53.5,
        "lon": -113.5,
        "timezone": zone,
        "same_day_radius_km": 10,
        "wave_cutoffs": ["12:00"],
    }
    refused(seeded.post("/v1/nodes", json=node, headers=admin))
    customer = order_body("web-tz")["customer"] | {"timezone": zone}
    refused(seeded.post("/v1/orders", json=order_body("web-tz", customer=customer), headers=admin))
    assert "ST9" not in [n["code"] for n in seeded.get("/v1/nodes", headers=admin).json()]


def test_a_cursor_that_is_not_ours_is_refused_however_deep(
    seeded: TestClient, admin: Headers
) -> None:
    for raw in ("[" * 5000 + "]" * 5000, "[" * 60 + "]" * 60, '{"a": 1}', "[1, 2]"):
        cursor = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
        refused(seeded.get("/v1/orders", params={"cursor": cursor}, headers=admin))


def test_nul_characters_are_refused_before_the_database_sees_them(
    seeded: TestClient, admin: Headers
) -> None:
    product = {"sku": "NUL-1", "name": "Tea\u0000", "weight_kg": 0.3}
    assert "NUL" in refused(seeded.post("/v1/products", json=product, headers=admin))["detail"]
    body = order_body("web-nul", lines=[{"sku": "TEA-1", "quantity": 1}])
    body["destination"] = {"address": {"line1": "10 Jasper\u0000 Ave", "city": "Edmonton"}}
    refused(seeded.post("/v1/orders", json=body, headers=admin))
    refused(seeded.get("/v1/stock", params={"sku": "TEA\u00001"}, headers=admin))
    refused(seeded.get("/v1/orders", params={"external_id": "web\u00001"}, headers=admin))
    assert seeded.get("/v1/orders", headers=admin).json()["items"] == []


@pytest.mark.parametrize(
    "costs",
    [
        b'{"cost_per_km": Infinity}',
        b'{"fixed_cost": NaN}',
        b'{"cost_per_hour": 1e300}',
        b'{"cost_per_km": -Infinity}',
    ],
)
def test_costs_that_are_not_finite_or_absurd_store_no_van(
    seeded: TestClient, admin: Headers, costs: bytes
) -> None:
    body = json.dumps(VAN).encode()[:-1] + b", " + costs[1:]
    refused(seeded.post("/v1/vans", content=body, headers=admin))
    assert seeded.get("/v1/vans", headers=admin).json() == []
    assert seeded.post("/v1/vans", json=VAN, headers=admin).status_code == 201  # nothing stuck


@pytest.mark.parametrize("field", ["external_id", "name"])
def test_line_breaks_in_what_reaches_a_mail_header_are_refused(
    seeded: TestClient, admin: Headers, field: str
) -> None:
    body = order_body("web-1", service_level="next_day")
    injected = "web-1\r\nBcc: everyone@example.com"
    if field == "external_id":
        body["external_id"] = injected
    else:
        body["customer"] = body["customer"] | {"name": injected}
    refused(seeded.post("/v1/orders", json=body, headers=admin))
    assert seeded.get("/v1/orders", headers=admin).json()["items"] == []
