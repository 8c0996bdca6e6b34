"""Order intake on PostgreSQL through the real HTTP server, at 32 concurrent clients.

Measures ``POST /v1/orders`` (with an Idempotency-Key, as storefronts send it) and, in the same
run and on the same stack (uvicorn workers, FastAPI, SQLAlchemy engine, PostgreSQL), a bare
endpoint that does one INSERT: the ratio says what the order logic costs over the floor.
Afterwards it checks that the database agrees with what the clients were told.

    uv run python bench/orders.py [--quick] [--clients 32] [--seconds 30] [--workers 2]

PostgreSQL and Redis: FULFILL_BENCH_POSTGRES_URL / FULFILL_BENCH_REDIS_URL, or throwaway
servers started from the local binaries. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import text
from sqlmodel import Session

import fulfill_devservers as devservers
from fulfill import processes
from fulfill.auth import Scope, create_key
from fulfill.db import engine_for
from fulfill.migrations import upgrade

SKUS = 200
NODES = [("WH1", 53.573, -113.421), ("ST1", 53.519, -113.497), ("ST2", 53.523, -113.624)]


def create_bare_app() -> Any:
    """The floor: the same stack doing one INSERT per request."""
    from fastapi import FastAPI

    engine = engine_for(os.environ["FULFILL_DATABASE_URL"])
    app = FastAPI()

    @app.post("/bare", status_code=201)
    def bare(payload: dict[str, Any]) -> dict[str, bool]:
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO bench_bare (payload) VALUES (:payload)"),
                {"payload": json.dumps(payload)},
            )
        return {"ok": True}

    return app


@dataclass
class Run:
    name: str
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if status < 300)

    @property
    def per_second(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


@contextmanager
def servers(base: Path) -> Iterator[tuple[str, str]]:
    with ExitStack() as stack:
        pg = os.environ.get("FULFILL_BENCH_POSTGRES_URL") or stack.enter_context(
            devservers.temporary_postgres(base / "pg")
        )
        redis = os.environ.get("FULFILL_BENCH_REDIS_URL") or stack.enter_context(
            devservers.temporary_redis(base / "redis")
        )
        yield pg, redis


@contextmanager
def uvicorn_server(target: str, env: dict[str, str], workers: int, app_dir: str) -> Iterator[str]:
    port = processes.free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        target,
        "--factory",
        "--app-dir",
        app_dir,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    process = subprocess.Popen(command, env=os.environ | env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/openapi.json", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{target} did not start")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def prepare_database(server_url: str) -> tuple[str, str, str]:
    url = devservers.create_database(server_url, f"bench_{uuid.uuid4().hex[:10]}")
    upgrade(url)
    engine = engine_for(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE bench_bare (id bigserial PRIMARY KEY, payload jsonb)"))
    with Session(engine) as session:
        admin = create_key(session, [Scope.ADMIN], "bench-admin")
        shop = create_key(session, [Scope.STOREFRONT], storefront="bench-shop")
        session.commit()
    return url, admin, shop


def seed(base_url: str, admin: str) -> None:
    headers = {"Authorization": f"Bearer {admin}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
        for code, lat, lon in NODES:
            client.post(
                "/v1/nodes",
                json={
                    "code": code,
                    "name": code,
                    "kind": "warehouse",
                    "lat": lat,
                    "lon": lon,
                    "timezone": "America/Edmonton",
                    "same_day_radius_km": 30,
                    "wave_cutoffs": ["23:59"],
                },
            ).raise_for_status()
        for n in range(SKUS):
            product = {"sku": f"SKU-{n:04d}", "name": f"P{n}", "weight_kg": 1.0}
            client.post("/v1/products", json=product).raise_for_status()
        for code, _, _ in NODES:
            levels = [{"sku": f"SKU-{n:04d}", "on_hand": 10_000_000} for n in range(SKUS)]
            client.put(f"/v1/nodes/{code}/stock", json=levels).raise_for_status()


def order_body(rng: random.Random, n: int) -> dict[str, Any]:
    skus = rng.sample(range(SKUS), rng.choice([1, 1, 2, 3]))
    return {
        "external_id": f"bench-{n}-{uuid.uuid4().hex[:8]}",
        "customer": {"name": "Bench", "email": "bench@example.com"},
        "destination": {"lat": 53.54 + rng.gauss(0, 0.05), "lon": -113.49 + rng.gauss(0, 0.08)},
        "service_level": rng.choice(["next_day", "standard"]),
        "lines": [{"sku": f"SKU-{s:04d}", "quantity": rng.randint(1, 3)} for s in skus],
    }


async def load(
    url: str,
    path: str,
    headers: dict[str, str],
    clients: int,
    warmup_s: float,
    seconds: float,
    name: str,
) -> Run:
    """``clients`` concurrent keep-alive clients, each sending its next request on an answer."""
    run = Run(name)
    counter = iter(range(10**9))
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(
        base_url=url, headers=headers, connector=connector, timeout=timeout
    ) as http:

        async def client(seed: int, until: float, record: bool) -> None:
            rng = random.Random(seed)
            while time.perf_counter() < until:
                body = order_body(rng, next(counter))
                started = time.perf_counter()
                idempotency = {"Idempotency-Key": body["external_id"]}
                async with http.post(path, json=body, headers=idempotency) as response:
                    await response.read()
                    status = response.status
                if record:
                    run.latencies_ms.append((time.perf_counter() - started) * 1000)
                    run.statuses[status] = run.statuses.get(status, 0) + 1

        warm_until = time.perf_counter() + warmup_s
        await asyncio.gather(*(client(i, warm_until, False) for i in range(clients)))
        started = time.perf_counter()
        until = started + seconds
        await asyncio.gather(*(client(1000 + i, until, True) for i in range(clients)))
        run.seconds = time.perf_counter() - started
    return run


def check_consistency(db_url: str, warm_and_measured_orders: int) -> dict[str, Any]:
    engine = engine_for(db_url)
    with engine.connect() as conn:
        orders = conn.execute(text("SELECT count(*) FROM orders")).scalar_one()
        reserved = conn.execute(text("SELECT coalesce(sum(reserved), 0) FROM stock")).scalar_one()
        lines = conn.execute(
            text("SELECT coalesce(sum(quantity), 0) FROM order_lines")
        ).scalar_one()
        outbox = conn.execute(text("SELECT count(*) FROM outbox")).scalar_one()
    return {
        "orders_in_db": orders,
        "reserved_equals_ordered": reserved == lines,
        "one_event_per_order": outbox == orders,
        "orders_at_least_acknowledged": orders >= warm_and_measured_orders,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run of the same code paths")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    args = parser.parse_args()
    seconds = args.seconds or (5.0 if args.quick else 30.0)
    warmup = 2.0 if args.quick else 5.0
    console = Console(stderr=True)

    with tempfile.TemporaryDirectory() as tmp, servers(Path(tmp)) as (pg, redis):
        db_url, admin, shop = prepare_database(pg)
        env = {
            "FULFILL_DATABASE_URL": db_url,
            "FULFILL_BROKER_URL": redis,
            "FULFILL_DATA_DIR": str(Path(tmp) / "data"),
        }
        bench_dir = str(Path(__file__).parent)
        with uvicorn_server("fulfill.app:create_app", env, args.workers, bench_dir) as url:
            seed(url, admin)
            console.print(
                f"orders: {args.clients} clients, {seconds:.0f} s after {warmup:.0f} s warm-up"
            )
            orders = asyncio.run(
                load(
                    url,
                    "/v1/orders",
                    {"Authorization": f"Bearer {shop}"},
                    args.clients,
                    warmup,
                    seconds,
                    "POST /v1/orders",
                )
            )
        with uvicorn_server("orders:create_bare_app", env, args.workers, bench_dir) as url:
            console.print("bare INSERT endpoint, same clients and duration")
            bare = asyncio.run(
                load(url, "/bare", {}, args.clients, warmup, seconds, "POST /bare (one INSERT)")
            )
        consistency = check_consistency(db_url, orders.ok)

    table = Table(
        title=f"Order intake, PostgreSQL, {args.clients} concurrent clients, "
        f"{args.workers} uvicorn workers"
    )
    for column in ("endpoint", "requests", "per second", "p50 ms", "p99 ms", "non-2xx"):
        table.add_column(column, justify="right")
    for run in (orders, bare):
        errors = sum(n for status, n in run.statuses.items() if status >= 300)
        table.add_row(
            run.name,
            str(sum(run.statuses.values())),
            f"{run.per_second:.0f}",
            f"{run.percentile(0.5):.1f}",
            f"{run.percentile(0.99):.1f}",
            str(errors),
        )
    console.print(table)
    ratio = orders.per_second / bare.per_second if bare.per_second else float("nan")
    console.print(f"orders/s relative to the bare INSERT: {ratio:.2f}; consistency: {consistency}")
    figures = {
        "bench": "orders",
        "quick": args.quick,
        "clients": args.clients,
        "workers": args.workers,
        "seconds": round(seconds, 1),
        "orders_per_s": round(orders.per_second, 1),
        "orders_p50_ms": round(orders.percentile(0.5), 2),
        "orders_p99_ms": round(orders.percentile(0.99), 2),
        "orders_non_2xx": sum(n for s, n in orders.statuses.items() if s >= 300),
        "bare_per_s": round(bare.per_second, 1),
        "bare_p50_ms": round(bare.percentile(0.5), 2),
        "bare_p99_ms": round(bare.percentile(0.99), 2),
        "throughput_ratio": round(ratio, 3),
        "p50_ratio": round(orders.percentile(0.5) / bare.percentile(0.5), 2),
        **consistency,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
