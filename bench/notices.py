"""Notices: tracking events through the API and one Celery worker on Redis, to a real SMTP sink.

Parcels live scripted lives (picked up, in transit, out for delivery, then delivered, a failed
attempt first, or damaged), a fifth of them promised too soon (a late alert at their first
scan). Their events reach the API as signed sandbox webhooks, in deliveries of 10, paced; one
worker (``--concurrency=1``) applies them, decides the notices and sends them over SMTP to an
aiosmtpd sink in this process, which notes when each message arrived.

Two runs on fresh parcels: the first measures notices per second and the time from each alert's
detection to its notice reaching the SMTP server; in the second the worker is SIGKILLed half
way and restarted, and every notice the rules call for must reach the sink exactly once
(duplicates counted by Message-ID; lost: notices written that never reached the sink, and
parcels whose status is not what their last event said, i.e. events that were never applied).
``--quick`` runs the same on a smaller load.

    uv run python bench/notices.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, func, insert, select
from sqlmodel import Session, col

import fulfill_devservers as devservers
from fulfill import processes
from fulfill.db import engine_for
from fulfill.inventory.models import Node
from fulfill.migrations import upgrade
from fulfill.notify.channels import message_digest
from fulfill.notify.figures import ANSWERED_BY
from fulfill.notify.models import Notice
from fulfill.orders.models import Fulfillment, Order, new_tracking_token
from fulfill.tracking.models import AlertKind, Shipment, TrackingAlert, WebhookReceipt
from fulfill_carriers import sign
from fulfill_carriers.sandbox.adapter import SIGNATURE_HEADER
from fulfill_carriers.sandbox.mapping import STATUSES

SECRET = "whsec_bench"
console = Console(stderr=True)
# Each life: the sandbox carrier's codes, in order.
LIVES = {
    "delivered": ("PU", "AF", "OD", "DL"),
    "missed": ("PU", "AF", "OD", "NH", "OD", "DL"),
    "damaged": ("PU", "AF", "DM"),
}
MIX = ("delivered",) * 7 + ("missed",) * 2 + ("damaged",)


class Sink:
    """The SMTP server's handler: when each Message-ID (its local part) arrived, every time."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[str, float]] = []
        self.lock = threading.Lock()

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: SmtpSession, envelope: Envelope
    ) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        for line in content.split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                local = line.split(b":", 1)[1].strip().lstrip(b"<").split(b"@")[0].decode()
                with self.lock:
                    self.arrivals.append((local, time.time()))
                break
        return "250 OK"


def parcels(engine: Engine, count: int, prefix: str, seed: int) -> dict[str, str]:
    """Orders with one followed parcel each; returns tracking number -> life."""
    rng = np.random.default_rng(seed)
    now = datetime.now(UTC)
    lives = {f"{prefix}{k:07d}": MIX[int(rng.integers(len(MIX)))] for k in range(count)}
    orders, fulfillments, shipments = [], [], []
    with Session(engine) as session:
        node_id = session.execute(select(Node.id)).scalar_one()
        for k, number in enumerate(lives):
            order_id, fulfillment_id = str(uuid.uuid4()), str(uuid.uuid4())
            soon = k % 5 == 0  # promised within the hour: late at the first scan
            end = now + (timedelta(hours=1) if soon else timedelta(days=4))
            orders.append(
                {
                    "id": order_id,
                    "storefront": "bench",
                    "external_id": number,
                    "status": "confirmed",
                    "service_level": "standard",
                    "customer": {
                        "name": "Ada Bench",
                        "email": f"{number}@example.com",
                        "channels": ["email"],
                        "language": "en",
                    },
                    "destination": {},
                    "dest_lat": 53.5,
                    "dest_lon": -113.5,
                    "promise_start": now,
                    "promise_end": end,
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
                    "promised_end": end,
                    "late": False,
                    "active": True,
                    "next_poll_at": now + timedelta(days=1),
                    "poll_failures": 0,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        for table, rows in ((Order, orders), (Fulfillment, fulfillments), (Shipment, shipments)):
            for start in range(0, len(rows), 2000):
                session.execute(insert(table), rows[start : start + 2000])
        session.commit()
    return lives


def event_stream(lives: dict[str, str], budget: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Round by round (every parcel's first event, then every second...), up to ``budget``."""
    stream: list[dict[str, Any]] = []
    sent: dict[str, int] = {}
    start = datetime.now(UTC)
    for step in range(max(len(LIVES[life]) for life in lives.values())):
        for number, life in lives.items():
            codes = LIVES[life]
            if step < len(codes) and len(stream) < budget:
                at = (start + timedelta(seconds=step)).strftime("%Y-%m-%dT%H:%M:%SZ")
                stream.append(
                    {
                        "id": f"{number}-{step}",
                        "tracking_number": number,
                        "code": codes[step],
                        "at": at,
                    }
                )
                sent[number] = step + 1
    return stream, sent


async def send(url: str, stream: list[dict[str, Any]], per_s: float, batch: int = 10) -> None:
    bodies = [
        json.dumps({"events": stream[s : s + batch]}).encode() for s in range(0, len(stream), batch)
    ]
    gap = batch / per_s
    loop = asyncio.get_running_loop()
    start_at = loop.time()
    queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
    for numbered in enumerate(bodies):
        queue.put_nowait(numbered)

    async def sender(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            n, body = queue.get_nowait()
            await asyncio.sleep(max(0.0, start_at + n * gap - loop.time()))
            headers = {SIGNATURE_HEADER: sign(body, SECRET), "Content-Type": "application/json"}
            response = await client.post(
                "/v1/carriers/sandbox/webhooks", content=body, headers=headers
            )
            if response.status_code != 202:
                raise RuntimeError(f"{response.status_code}: {response.text}")

    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await asyncio.gather(*(sender(client) for _ in range(8)))


class Stack:
    """The API and one worker (and beat, whose sweeps recover what a killed worker held)."""

    def __init__(self, env: dict[str, str], tmp: Path) -> None:
        self.env, self.tmp = env, tmp
        self.port = processes.free_port()
        self.children: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        argv = {
            "api": [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "fulfill.app:create_app",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            "worker": [
                sys.executable,
                "-m",
                "fulfill",
                "worker",
                "--concurrency=1",
                "--loglevel=WARNING",
            ],
            "beat": [sys.executable, "-m", "fulfill", "beat", "--loglevel=WARNING"],
        }[name]
        log = (self.tmp / f"{name}.log").open("ab")
        self.children[name] = subprocess.Popen(
            argv, env=os.environ | self.env, stdout=log, stderr=subprocess.STDOUT
        )

    def kill(self, name: str) -> None:
        self.children[name].send_signal(signal.SIGKILL)
        self.children[name].wait()

    def stop(self) -> None:
        for child in self.children.values():
            child.terminate()
        for child in self.children.values():
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                child.kill()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        processes.wait_for_http(f"{self.url}/healthz")


def settle(engine: Engine, timeout_s: float) -> None:
    """Until every webhook delivery is applied and no notice is left to send."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with Session(engine) as session:
            unapplied = session.execute(
                select(func.count())
                .select_from(WebhookReceipt)
                .where(WebhookReceipt.processed_at.is_(None))  # type: ignore[union-attr]
            ).scalar_one()
            busy = session.execute(
                select(func.count()).select_from(Notice).where(Notice.status == "pending")
            ).scalar_one()
        if unapplied == 0 and busy == 0:
            return
        time.sleep(0.5)
    console.print(f"[yellow]not settled after {timeout_s:.0f} s[/]")


def run(
    engine: Engine,
    stack: Stack,
    sink: Sink,
    prefix: str,
    events: int,
    rate: float,
    kill: bool,
    seed: int,
) -> dict[str, Any]:
    lives = parcels(engine, -(-events // 4), prefix, seed)
    stream, sent_upto = event_stream(lives, events)
    already = len(sink.arrivals)
    started = time.time()
    if kill:
        half = len(stream) // 2
        asyncio.run(send(stack.url, stream[:half], rate))
        time.sleep(1.0)  # the worker is busy with the first half
        stack.kill("worker")
        console.print("[red]worker SIGKILLed[/]; restarting it")
        time.sleep(1.0)
        stack.start("worker")
        asyncio.run(send(stack.url, stream[half:], rate))
    else:
        asyncio.run(send(stack.url, stream, rate))
    time.sleep(2.0)  # the last deliveries reach the database
    settle(engine, timeout_s=300)
    arrivals = sink.arrivals[already:]
    with Session(engine) as session:
        notices = session.execute(
            select(Notice.id, Notice.kind, Notice.status, Notice.triggered_at, Notice.shipment_id)
            .join(Order, Order.id == Notice.order_id)
            .where(Order.external_id.startswith(prefix))  # type: ignore[attr-defined]
        ).all()
        alerts = session.execute(
            select(TrackingAlert.shipment_id, TrackingAlert.kind, TrackingAlert.detected_at)
            .join(Order, Order.id == TrackingAlert.order_id)
            .where(Order.external_id.startswith(prefix))  # type: ignore[attr-defined]
        ).all()
    arrived: dict[str, float] = {}
    for message_id, at in arrivals:
        arrived.setdefault(message_id, at)
    ids = {message_digest(n.id): n for n in notices}
    received = Counter(message_id for message_id, _ in arrivals if message_id in ids)
    # Each alert against the first notice of the kind that answers it, on its parcel.
    answered: dict[tuple[str, str], float] = {}
    for mid, n in ids.items():
        if mid in arrived:
            key = (n.shipment_id, n.kind)
            answered[key] = min(answered.get(key, arrived[mid]), arrived[mid])
    alert_waits = []
    for shipment_id, kind, detected_at in alerts:
        answer = ANSWERED_BY.get(AlertKind(kind))
        if answer is not None and (shipment_id, answer.value) in answered:
            alert_waits.append(answered[shipment_id, answer.value] - detected_at.timestamp())
    all_waits = [
        arrived[mid] - n.triggered_at.timestamp() for mid, n in ids.items() if mid in arrived
    ]
    span = max((at for _, at in arrivals), default=started) - started
    return {
        "events": len(stream),
        "parcels": len(lives),
        "parcels_not_at_their_last_status": _astray(engine, lives, sent_upto),
        "notices_written": len(notices),
        "notices_received": len(received),
        "duplicates": sum(count - 1 for count in received.values()),
        "lost": len(ids) - len(received),
        "notices_per_s": round(len(received) / span, 1) if span > 0 else None,
        "alert_to_notice_p50_s": _pct(alert_waits, 50),
        "alert_to_notice_p99_s": _pct(alert_waits, 99),
        "alert_to_notice_max_s": _pct(alert_waits, 100),
        "alerts_notified": len(alert_waits),
        "alerts_unanswered": sum(kind in ANSWERED_BY for _, kind, _ in alerts) - len(alert_waits),
        "event_to_notice_p50_s": _pct(all_waits, 50),
        "event_to_notice_p99_s": _pct(all_waits, 99),
        "by_kind": dict(Counter(n.kind for n in notices)),
    }


def _astray(engine: Engine, lives: dict[str, str], sent_upto: dict[str, int]) -> int:
    """Parcels whose status is not what their last event sent says: events lost on the way."""
    last = {number: LIVES[life][sent_upto[number] - 1] for number, life in lives.items()}
    with Session(engine) as session:
        statuses = dict(
            session.execute(
                select(Shipment.tracking_number, Shipment.status).where(
                    col(Shipment.tracking_number).in_(list(lives))
                )
            ).all()
        )
    return sum(statuses.get(number) != STATUSES[code][0] for number, code in last.items())


def _pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="750 and 400 events")
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--kill-events", type=int, default=4_000)
    parser.add_argument("--rate", type=float, default=50.0, help="events offered a second")
    args = parser.parse_args()
    if args.quick:
        args.events, args.kill_events = 750, 400
    figures: dict[str, Any] = {"bench": "notices", "quick": args.quick}
    sink = Sink()
    smtp = Controller(sink, hostname="127.0.0.1", port=processes.free_port())
    smtp.start()
    with tempfile.TemporaryDirectory(prefix="fulfill-bench-") as name:
        tmp = Path(name)
        with (
            devservers.temporary_postgres(tmp / "pg") as pg,
            devservers.temporary_redis(tmp / "redis") as redis_url,
        ):
            db_url = devservers.create_database(pg, "bench")
            upgrade(db_url)
            engine = engine_for(db_url)
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
            env = {
                "FULFILL_DATA_DIR": str(tmp),
                "FULFILL_DATABASE_URL": db_url,
                "FULFILL_BROKER_URL": redis_url,
                "FULFILL_CARRIER_URL": "http://127.0.0.1:9",
                "FULFILL_CARRIER_WEBHOOK_SECRET": SECRET,
                "FULFILL_SMTP_HOST": "127.0.0.1",
                "FULFILL_SMTP_PORT": str(smtp.port),
                "FULFILL_TRACKING_POLL_S": "3600",
                # A killed worker's claimed events come back after this lease.
                "FULFILL_OUTBOX_LEASE_S": "20",
            }
            stack = Stack(env, tmp)
            try:
                for name_ in ("api", "worker", "beat"):
                    stack.start(name_)
                stack.wait_ready()
                run(engine, stack, sink, "warm", 200, args.rate, kill=False, seed=0)
                console.print(f"{args.events} events at {args.rate:.0f}/s, one worker")
                steady = run(engine, stack, sink, "s", args.events, args.rate, False, seed=1)
                console.print(f"{args.kill_events} events, the worker SIGKILLed half way")
                killed = run(engine, stack, sink, "k", args.kill_events, args.rate, True, seed=2)
            finally:
                stack.stop()
                smtp.stop()
    figures |= {f"steady_{k}": v for k, v in steady.items()}
    figures |= {f"killed_{k}": v for k, v in killed.items()}
    table = Table(title="Notices: webhooks through API and one worker to an SMTP server")
    table.add_column("measure")
    table.add_column("steady", justify="right")
    table.add_column("worker killed", justify="right")
    table.add_column("target", justify="right")
    targets = {
        "alert_to_notice_p99_s": "< 2 steady",
        "duplicates": "0",
        "lost": "0",
        "parcels_not_at_their_last_status": "0",
    }
    for key in steady:
        table.add_row(key, str(steady[key]), str(killed[key]), targets.get(key, ""))
    Console().print(table)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
