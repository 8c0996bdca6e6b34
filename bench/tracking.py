"""Tracking under load: carrier webhooks through the real HTTP server and a real worker on Redis,
and one beat cycle polling thousands of active shipments against the sandbox carrier.

Throwaway PostgreSQL and Redis servers are started from the local binaries. The API runs as one
uvicorn process (``fulfill.app:create_app``), one Celery worker applies the deliveries. The
sandbox carrier runs in this process, so the bench can create its parcels directly.

1. Webhooks: signed deliveries of ``--batch`` events each (the sandbox carrier's format; a
   carrier that batches its events), sent by ``--senders`` concurrent connections. Measured:
   events accepted per second by the API, events per second end to end (until the worker has
   stored them all), and per delivery, from its receipt to its events' statuses being stored.
   Latency is then measured at an offered load of ``--rate`` events a second (the target's
   1,000), so that it is the system's lag, not the queue a flat-out sender builds.
2. Polling: ``--shipments`` active shipments due at once, one cycle of the beat task's code
   (``polling.poll_due``) at the default rate limit; its wall time.

    uv run python bench/tracking.py [--quick] [--events 20000] [--batch 10] [--shipments 10000]

Prints a table, then one JSON line. Targets: at least 1,000 events a second accepted by one API
process, p99 from receipt to stored status under 1 s with one worker; a polling cycle of 10,000
shipments within one minute.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, func, insert, select
from sqlmodel import Session

import fulfill_devservers as devservers
from fulfill import processes
from fulfill.config import Settings
from fulfill.db import engine_for
from fulfill.inventory.models import Node
from fulfill.migrations import upgrade
from fulfill.orders.models import Fulfillment, Order, new_tracking_token
from fulfill.tracking import carriers, polling
from fulfill.tracking.models import Shipment, WebhookReceipt
from fulfill.wiring import wire
from fulfill_carriers import sign
from fulfill_carriers.sandbox.adapter import SIGNATURE_HEADER
from fulfill_carriers.sandboxes import CarrierState
from fulfill_carriers.sandboxes import carrier_sandbox_app as sandbox_app

SECRET = "whsec_bench"
CODES = ("CR", "PU", "AF", "DF", "AF", "OD", "DL")
console = Console(stderr=True)


@contextlib.contextmanager
def process(argv: list[str], env: dict[str, str], log: Path) -> Iterator[None]:
    with log.open("wb") as out:
        child = subprocess.Popen(argv, env=os.environ | env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield
        finally:
            child.terminate()
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                child.kill()


def add_shipments(engine: Engine, numbers: list[str], prefix: str, *, due: bool) -> None:
    """Orders, fulfillments and shipments in bulk: what the bench follows (polled if due)."""
    now = datetime.now(UTC)
    poll_at = now if due else now + timedelta(days=1)
    with Session(engine) as session:
        node_id = session.execute(select(Node.id)).scalar_one()
        orders, fulfillments, shipments = [], [], []
        for k, number in enumerate(numbers):
            order_id, fulfillment_id = str(uuid.uuid4()), str(uuid.uuid4())
            orders.append(
                {
                    "id": order_id,
                    "storefront": "bench",
                    "external_id": f"{prefix}{k}",
                    "status": "confirmed",
                    "service_level": "standard",
                    "customer": {"name": "Ada"},
                    "destination": {},
                    "dest_lat": 53.5,
                    "dest_lon": -113.5,
                    "promise_start": now,
                    "promise_end": now + timedelta(days=3),
                    "created_at": now,
                    "updated_at": now,
                    "tracking_token": new_tracking_token(),
                }
            )
            fulfillments.append(
                {
                    "id": fulfillment_id,
                    "order_id": order_id,
                    "node_id": node_id,
                    "status": "pending",
                    "created_at": now,
                }
            )
            shipments.append(
                {
                    "id": str(uuid.uuid4()),
                    "fulfillment_id": fulfillment_id,
                    "order_id": order_id,
                    "carrier": "sandbox",
                    "tracking_number": number,
                    "tracking_ref": number,
                    "status": "pending",
                    "status_at": now,
                    "promised_end": now + timedelta(days=3),
                    "late": False,
                    "active": True,
                    "next_poll_at": poll_at,
                    "poll_failures": 0,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        for table, rows in ((Order, orders), (Fulfillment, fulfillments), (Shipment, shipments)):
            for start in range(0, len(rows), 2000):
                session.execute(insert(table), rows[start : start + 2000])
        session.commit()


def seed_node(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(
            Node(
                code="WH1",
                name="Warehouse",
                kind="warehouse",
                lat=53.5,
                lon=-113.5,
                timezone="America/Edmonton",
            )
        )
        session.commit()


async def send_webhooks(
    url: str,
    numbers: list[str],
    events: int,
    batch: int,
    senders: int,
    per_s: float | None = None,
    first: int = 0,
) -> tuple[float, int]:
    """Signed deliveries, each parcel's events in order (from its ``first``), as fast as the
    API takes them or paced at ``per_s`` events a second; returns (seconds, deliveries)."""
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    stream = [
        {
            "id": f"{numbers[k % len(numbers)]}-{k // len(numbers)}",
            "tracking_number": numbers[k % len(numbers)],
            "code": CODES[min(k // len(numbers), len(CODES) - 1)],
            "at": at,
        }
        for k in range(first * len(numbers), first * len(numbers) + events)
    ]
    bodies = [
        json.dumps({"events": stream[s : s + batch]}).encode() for s in range(0, events, batch)
    ]
    queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
    for numbered in enumerate(bodies):
        queue.put_nowait(numbered)
    gap = batch / per_s if per_s else 0.0
    loop = asyncio.get_running_loop()
    start_at = loop.time()

    async def sender(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            n, body = queue.get_nowait()
            if gap:
                await asyncio.sleep(max(0.0, start_at + n * gap - loop.time()))
            headers = {SIGNATURE_HEADER: sign(body, SECRET), "Content-Type": "application/json"}
            response = await client.post(
                "/v1/carriers/sandbox/webhooks", content=body, headers=headers
            )
            if response.status_code != 202:
                raise RuntimeError(f"{response.status_code}: {response.text}")

    limits = httpx.Limits(max_connections=senders, max_keepalive_connections=senders)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(sender(client) for _ in range(senders)))
        return time.perf_counter() - started, len(bodies)


def wait_applied(engine: Engine, deliveries: int, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        with Session(engine) as session:
            done = session.execute(
                select(func.count())
                .select_from(WebhookReceipt)
                .where(WebhookReceipt.processed_at.is_not(None))  # type: ignore[union-attr]
            ).scalar_one()
        if done >= deliveries:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {done} of {deliveries} deliveries applied")
        time.sleep(0.2)


def receipt_latencies(engine: Engine, after_id: int) -> tuple[np.ndarray, float]:
    with Session(engine) as session:
        rows = session.execute(
            select(WebhookReceipt.received_at, WebhookReceipt.processed_at).where(
                WebhookReceipt.id > after_id  # type: ignore[operator]
            )
        ).all()
    lags = np.array([(done - got).total_seconds() for got, done in rows])
    span = (max(d for _, d in rows) - min(g for g, _ in rows)).total_seconds()
    return lags, span


def ingest_bench(
    engine: Engine, db_url: str, redis_url: str, tmp: Path, carrier_url: str, args: Any
) -> dict[str, Any]:
    numbers = [f"SBXW{k:08d}" for k in range(args.parcels)]
    add_shipments(engine, numbers, "w", due=False)
    env = {
        "FULFILL_DATA_DIR": str(tmp),
        "FULFILL_DATABASE_URL": db_url,
        "FULFILL_BROKER_URL": redis_url,
        "FULFILL_CARRIER_URL": carrier_url,
        "FULFILL_CARRIER_WEBHOOK_SECRET": SECRET,
        "FULFILL_API_THREADS": "8",
        "FULFILL_TRACKING_POLL_S": "3600",
    }
    port = processes.free_port()
    api = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "fulfill.app:create_app",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    worker = [sys.executable, "-m", "fulfill", "worker", "--concurrency=1", "--loglevel=WARNING"]
    with process(api, env, tmp / "api.log"), process(worker, env, tmp / "worker.log"):
        base = f"http://127.0.0.1:{port}"
        processes.wait_for_http(f"{base}/healthz")
        # Warm up the API and the worker (imports, connections) on other parcels first.
        warm = [f"SBXWARM{k:04d}" for k in range(200)]
        add_shipments(engine, warm, "warm", due=False)
        _, warmed = asyncio.run(send_webhooks(base, warm, 200, args.batch, args.senders))
        wait_applied(engine, warmed)
        with Session(engine) as session:
            first = session.execute(select(func.max(WebhookReceipt.id))).scalar_one()
        console.print(f"sending {args.events} events in deliveries of {args.batch}, flat out")
        seconds, deliveries = asyncio.run(
            send_webhooks(base, numbers, args.events, args.batch, args.senders)
        )
        wait_applied(engine, warmed + deliveries)
        flat_out, span = receipt_latencies(engine, after_id=first)
        with Session(engine) as session:
            paced_from = session.execute(select(func.max(WebhookReceipt.id))).scalar_one()
        paced = min(args.events, int(args.rate * 10))
        console.print(f"sending {paced} events at {args.rate:.0f} a second")
        rounds = -(-args.events // len(numbers))  # the parcels' next events
        _, more = asyncio.run(
            send_webhooks(
                base, numbers, paced, args.batch, args.senders, per_s=args.rate, first=rounds
            )
        )
        wait_applied(engine, warmed + deliveries + more)
    lags, _ = receipt_latencies(engine, after_id=paced_from)
    return {
        "webhook_events": args.events,
        "events_per_delivery": args.batch,
        "deliveries": deliveries,
        "senders": args.senders,
        "accepted_events_per_s": round(args.events / seconds, 1),
        "accepted_deliveries_per_s": round(deliveries / seconds, 1),
        "end_to_end_events_per_s": round(args.events / span, 1),
        "flat_out_lag_p99_s": round(float(np.percentile(flat_out, 99)), 3),
        "paced_events_per_s": args.rate,
        "receipt_to_stored_p50_s": round(float(np.percentile(lags, 50)), 3),
        "receipt_to_stored_p99_s": round(float(np.percentile(lags, 99)), 3),
    }


def poll_bench(
    engine: Engine, db_url: str, state: CarrierState, carrier_url: str, args: Any, tmp: Path
) -> dict[str, Any]:
    with state.lock:
        numbers = [
            state.create(f"poll-{k}", "delivered", "Edmonton").tracking_number
            for k in range(args.shipments)
        ]
        state.offset_s += 6 * 3600  # each parcel has a few scans to report
    add_shipments(engine, numbers, "p", due=True)
    settings = Settings(data_dir=tmp, database_url=db_url, carrier_url=carrier_url)
    configured = carriers.configured(settings)
    wire()  # the parcels' news reaches the notices, as in a worker
    console.print(f"polling {args.shipments} shipments, one beat cycle")
    started = time.perf_counter()
    try:
        report = polling.poll_due(engine, configured, settings, datetime.now(UTC))
    finally:
        carriers.close(configured)
    seconds = time.perf_counter() - started
    return {
        "poll_shipments": report.shipments,
        "poll_calls": report.calls,
        "poll_events_stored": report.events,
        "poll_failed_calls": report.failed_calls,
        "poll_rate_limit_per_s": settings.tracking_rate_per_s,
        "poll_cycle_s": round(seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 events, 1,000 shipments")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=10, help="events per webhook delivery")
    parser.add_argument("--senders", type=int, default=16)
    parser.add_argument(
        "--rate",
        type=float,
        default=1000.0,
        help="events a second offered while latency is measured",
    )
    parser.add_argument("--parcels", type=int, default=2_000, help="parcels the webhooks cover")
    parser.add_argument("--shipments", type=int, default=10_000, help="shipments polled")
    args = parser.parse_args()
    if args.quick:
        args.events, args.parcels, args.shipments = 2_000, 500, 1_000
    figures: dict[str, Any] = {"bench": "tracking", "quick": args.quick}
    with tempfile.TemporaryDirectory(prefix="fulfill-bench-") as name:
        tmp = Path(name)
        with (
            devservers.temporary_postgres(tmp / "pg") as pg,
            devservers.temporary_redis(tmp / "redis") as redis_url,
        ):
            db_url = devservers.create_database(pg, "bench")
            upgrade(db_url)
            engine = engine_for(db_url)
            seed_node(engine)
            state = CarrierState(speed=1.0)
            with processes.LiveServer(sandbox_app(state)) as served:
                carrier_url = served.url
                figures |= ingest_bench(engine, db_url, redis_url, tmp, carrier_url, args)
                figures |= poll_bench(engine, db_url, state, carrier_url, args, tmp)
    table = Table(title="Tracking: webhooks through API and worker, one polling cycle")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    targets = {
        "accepted_events_per_s": ">= 1000",
        "receipt_to_stored_p99_s": "< 1",
        "poll_cycle_s": "< 60 (10,000)",
    }
    for key, value in figures.items():
        table.add_row(key, str(value), targets.get(key, ""))
    Console().print(table)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
