"""The demo's shop: its nodes, catalog, stock and vans, and the day's orders (the same seed
gives the same day)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from fulfill.demo.city import City, node_bodies

SKUS = 300
VANS = 20
LEVELS = ("same_day",) * 6 + ("next_day",) * 3 + ("standard",)
# When orders arrive (local hour, weight): a morning rise, a lunch peak, an evening peak.
PEAKS = ((10.0, 1.5, 0.3), (12.5, 1.0, 0.3), (19.0, 1.5, 0.4))  # mean, sd, share
OPEN_HOURS = (7.0, 21.5)
FIRST_NAMES = ("Ada", "Omar", "Li", "Chloé", "Ravi", "Maya", "Jonas", "Aiyana", "Sofia", "Kwame")


@dataclass(frozen=True)
class DemoOrder:
    at: datetime  # when the storefront places it (UTC)
    body: dict[str, Any]


def seed_shop(client: httpx.Client, city: City, rng: random.Random) -> dict[str, int]:
    """Nodes, 300 products with stock at each node, and 20 vans; returns FBA stock by sku."""
    for body in node_bodies(city):
        _created(client.post("/v1/nodes", json=body))
    for n in range(SKUS):
        product = {
            "sku": sku(n),
            "name": f"Product {n}",
            "weight_kg": round(rng.uniform(0.2, 6), 2),
        }
        _created(client.post("/v1/products", json=product))
    third_party: dict[str, int] = {}
    for node in city.nodes:
        counted = {sku(n): _stock(node["kind"], n, rng) for n in range(SKUS)}
        levels = [{"sku": s, "on_hand": on_hand} for s, on_hand in counted.items()]
        client.put(f"/v1/nodes/{node['code']}/stock", json=levels).raise_for_status()
        if node["kind"] == "third_party":
            third_party = counted
    own = [node for node in city.nodes if node["kind"] != "third_party"]
    for k in range(VANS):
        node = own[0] if k < VANS // 2 else own[1 + k % 2]  # half at the warehouse
        van = {
            "code": f"VAN{k + 1:02d}",
            "node": node["code"],
            "capacity_parcels": 60,
            "capacity_kg": 700,
            "shift_start": "08:00",
            "shift_end": "22:00",
            "cost_per_km": 0.45,
            "cost_per_hour": 24.0,
            "fixed_cost": 15.0,
        }
        _created(client.post("/v1/vans", json=van))
    return third_party


def sku(n: int) -> str:
    return f"SKU-{n:04d}"


def _stock(kind: str, n: int, rng: random.Random) -> int:
    """Popular products (low numbers) are stocked deeper; the third party holds the long tail."""
    if kind == "warehouse":
        return rng.randint(20, 200) if n < 200 else rng.randint(0, 20)
    if kind == "store":
        return rng.randint(0, 15) if n < 100 else 0
    return rng.randint(50, 500) if n >= 150 else 0


def day_orders(city: City, day: date, count: int, rng: random.Random) -> list[DemoOrder]:
    """``count`` orders over the shop's day, on its daily curve, in the order they arrive."""
    zone = ZoneInfo(city.timezone)
    midnight = datetime.combine(day, time(0), tzinfo=zone)
    times = sorted(_arrival_hour(rng) for _ in range(count))
    return [
        DemoOrder(
            (midnight + timedelta(hours=h)).astimezone(ZoneInfo("UTC")),
            _order_body(f"demo-{day.isoformat()}-{k:05d}", city, rng),
        )
        for k, h in enumerate(times)
    ]


def _arrival_hour(rng: random.Random) -> float:
    while True:
        mean, sd, _ = rng.choices(PEAKS, weights=[p[2] for p in PEAKS])[0]
        hour = rng.gauss(mean, sd)
        if OPEN_HOURS[0] <= hour <= OPEN_HOURS[1]:
            return hour


def _order_body(external_id: str, city: City, rng: random.Random) -> dict[str, Any]:
    # Popular products sell most: a geometric-like pick over the catalog.
    lines: dict[str, int] = {}
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
        lines[sku(min(SKUS - 1, int(rng.expovariate(1 / 60))))] = rng.choice((1, 1, 1, 2))
    name = rng.choice(FIRST_NAMES)
    channels = rng.choices((["email"], ["sms", "email"], ["email", "sms"]), weights=(6, 3, 1))[0]
    customer = {
        "name": f"{name} Demo",
        "email": f"{external_id}@example.com",
        "phone": f"+1780555{rng.randrange(10_000):04d}",
        "channels": channels,
        "language": "fr" if city.timezone == "America/Toronto" and rng.random() < 0.6 else "en",
        "timezone": city.timezone,
    }
    lat = city.centre[0] + rng.gauss(0, city.spread[0])
    lon = city.centre[1] + rng.gauss(0, city.spread[1])
    return {
        "external_id": external_id,
        "customer": customer,
        "destination": {
            "lat": round(lat, 5),
            "lon": round(lon, 5),
            "address": {"line1": f"{rng.randrange(1, 9999)} Demo Street", "city": city.name},
        },
        "service_level": rng.choice(LEVELS),
        "lines": [{"sku": s, "quantity": q} for s, q in lines.items()],
    }


def _created(response: httpx.Response) -> None:
    if response.status_code not in (200, 201, 409):
        response.raise_for_status()
