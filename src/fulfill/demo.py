"""A sample shop and a burst of orders, through the public API of a running service.

Run ``fulfill serve`` first; ``fulfill demo`` then seeds a city's nodes, products and stock
(again and again without harm) and places orders the way a storefront would, printing what
happened to them.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

CITY_CENTRE = (53.5461, -113.4938)  # Edmonton
CITY_TIMEZONE = "America/Edmonton"
NODES = [
    {"code": "WH1", "name": "Main warehouse", "kind": "warehouse", "lat": 53.5730, "lon": -113.4210,
     "same_day_radius_km": 35, "wave_cutoffs": ["09:00", "11:00", "13:00", "15:00", "17:00"]},
    {"code": "ST1", "name": "Whyte Ave store", "kind": "store", "lat": 53.5190, "lon": -113.4970,
     "same_day_radius_km": 12, "wave_cutoffs": ["12:00", "16:00", "19:00"]},
    {"code": "ST2", "name": "West End store", "kind": "store", "lat": 53.5230, "lon": -113.6240,
     "same_day_radius_km": 12, "wave_cutoffs": ["12:00", "16:00", "19:00"]},
]  # fmt: skip
LEVELS = ["same_day"] * 5 + ["next_day"] * 3 + ["standard"] * 2


@dataclass
class DemoResult:
    placed: Counter[tuple[str, str]] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)


def seed_shop(client: httpx.Client, headers: dict[str, str], skus: int, rng: random.Random) -> None:
    for node in NODES:
        body = node | {"timezone": CITY_TIMEZONE}
        _created_or_exists(client.post("/v1/nodes", json=body, headers=headers))
    for n in range(skus):
        product = {"sku": f"SKU-{n:04d}", "name": f"Product {n}",
                   "weight_kg": round(rng.uniform(0.1, 8.0), 2)}  # fmt: skip
        _created_or_exists(client.post("/v1/products", json=product, headers=headers))
    for node in NODES:
        levels = [
            {
                "sku": f"SKU-{n:04d}",
                "on_hand": rng.randint(0, 40 if node["kind"] == "store" else 400),
            }
            for n in range(skus)
        ]
        client.put(
            f"/v1/nodes/{node['code']}/stock", json=levels, headers=headers
        ).raise_for_status()


def place_orders(
    client: httpx.Client, headers: dict[str, str], orders: int, skus: int, rng: random.Random
) -> DemoResult:
    result = DemoResult()
    run = f"{int(time.time())}"
    for n in range(orders):
        body = _random_order(f"demo-{run}-{n}", skus, rng)
        started = time.perf_counter()
        idempotent = headers | {"Idempotency-Key": body["external_id"]}
        response = client.post("/v1/orders", json=body, headers=idempotent)
        result.latencies_ms.append((time.perf_counter() - started) * 1000)
        if response.status_code == 201:
            order = response.json()
            result.placed[(order["fulfillments"][0]["node"], order["service_level"])] += 1
        else:
            result.refused[response.json().get("type", "").rsplit("/", 1)[-1]] += 1
    return result


def _random_order(external_id: str, skus: int, rng: random.Random) -> dict[str, Any]:
    lines = {
        f"SKU-{rng.randrange(skus):04d}": rng.choice([1, 1, 1, 2, 3])
        for _ in range(rng.choice([1, 1, 2, 3]))
    }
    return {
        "external_id": external_id,
        "customer": {
            "name": "Demo customer",
            "email": "customer@example.com",
            "channels": ["email"],
        },
        "destination": {
            "lat": CITY_CENTRE[0] + rng.gauss(0, 0.06),
            "lon": CITY_CENTRE[1] + rng.gauss(0, 0.1),
        },
        "service_level": rng.choice(LEVELS),
        "lines": [{"sku": sku, "quantity": qty} for sku, qty in lines.items()],
    }


def _created_or_exists(response: httpx.Response) -> None:
    if response.status_code not in (201, 409):
        response.raise_for_status()
