"""Helpers the tests share: a seeded catalog, order bodies, a live HTTP server."""

from __future__ import annotations

import email
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import Message as EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from sqlmodel import Session

from fulfill.config import Settings
from fulfill.db import utcnow
from fulfill.outbox.models import OutboxEvent
from fulfill.outbox.service import relay
from fulfill.processes import free_port
from fulfill.wiring import outbox_handlers

# A fixed Wednesday morning in Edmonton (08:30 MST, UTC-7): every cutoff of the test nodes is ahead.
MORNING = datetime(2026, 11, 18, 15, 30, tzinfo=UTC)

# How long a test waits for another process (a worker, beat, a server) before it fails. Generous,
# since a loaded machine starts Celery slowly; a passing test waits only as long as the work takes.
PATIENCE_S = 180.0

EDMONTON = {"lat": 53.546, "lon": -113.494, "timezone": "America/Edmonton"}
DOWNTOWN = {"lat": 53.5436, "lon": -113.4923}


def seed_catalog(client: TestClient, admin: dict[str, str], *, vans: bool = True) -> None:
    """Two products; a warehouse downtown and a store 12 km south-west, with stock, and (unless
    ``vans`` is false) a van at each, so that both can deliver same day."""
    for product in (
        {"sku": "TEA-1", "name": "Green tea", "weight_kg": 0.3},
        {
            "sku": "MUG-1",
            "name": "Mug",
            "weight_kg": 0.4,
            "length_cm": 12,
            "width_cm": 9,
            "height_cm": 10,
        },
    ):
        assert client.post("/v1/products", json=product, headers=admin).status_code == 201
    nodes = [
        {
            "code": "WH1",
            "name": "Main warehouse",
            "kind": "warehouse",
            **EDMONTON,
            "same_day_radius_km": 30,
            "wave_cutoffs": ["10:00", "13:00", "16:00"],
        },
        {
            "code": "ST1",
            "name": "South store",
            "kind": "store",
            "lat": 53.44,
            "lon": -113.60,
            "timezone": "America/Edmonton",
            "same_day_radius_km": 15,
            "wave_cutoffs": ["12:00"],
        },
    ]
    for node in nodes:
        assert client.post("/v1/nodes", json=node, headers=admin).status_code == 201
    stock = {"WH1": [("TEA-1", 10), ("MUG-1", 5)], "ST1": [("TEA-1", 20), ("MUG-1", 20)]}
    for code, levels in stock.items():
        body = [{"sku": sku, "on_hand": qty} for sku, qty in levels]
        assert client.put(f"/v1/nodes/{code}/stock", json=body, headers=admin).status_code == 200
    for code in ("WH1", "ST1") if vans else ():
        van = {
            "code": f"{code}-V1",
            "node": code,
            "capacity_parcels": 40,
            "capacity_kg": 300,
            "shift_start": "09:00",
            "shift_end": "19:00",
        }
        assert client.post("/v1/vans", json=van, headers=admin).status_code == 201


def order_body(external_id: str = "web-1001", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "external_id": external_id,
        "customer": {
            "name": "Ada",
            "email": "ada@example.com",
            "phone": "+15550100",
            "channels": ["email", "sms"],
        },
        "destination": dict(DOWNTOWN),
        "service_level": "same_day",
        "lines": [{"sku": "TEA-1", "quantity": 2}],
    }
    body.update(overrides)
    return body


def available(client: TestClient, headers: dict[str, str], sku: str, node: str) -> int:
    rows = client.get("/v1/stock", params={"sku": sku, "node": node}, headers=headers).json()
    return int(rows[0]["available"])


class WebhookReceiver:
    """A real HTTP endpoint on 127.0.0.1 that records what it receives.

    ``statuses`` are answered in turn (the last one repeats), to script failures.
    """

    def __init__(self, statuses: tuple[int, ...] = (200,)) -> None:
        self.statuses = list(statuses)
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.received.append((dict(self.headers.items()), body))
                status = (
                    receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                )
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/events"

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(
        self, count: int, timeout_s: float = PATIENCE_S
    ) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout_s
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"received {len(self.received)} of {count} webhooks")
            time.sleep(0.05)
        return self.received


def relay_now(engine: Engine, settings: Settings) -> None:
    """What the outbox relay task does, with every event due now (no waiting out backoff)."""
    with Session(engine) as session:
        session.execute(update(OutboxEvent).values(next_run_at=utcnow() - timedelta(seconds=1)))
        session.commit()
        relay(
            session,
            outbox_handlers(settings),
            limit=100,
            lease=timedelta(minutes=5),
            max_attempts=5,
        )


class Inbox:
    """An SMTP server's handler: keeps what it accepts, refuses one address for good and
    defers another."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.peers: list[Any] = []  # the client's address of each message: its connection

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: SmtpSession, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address.startswith("gone@"):
            return "550 5.1.1 no such mailbox"
        if address.startswith("full@"):
            return "452 4.2.2 mailbox full, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: SmtpSession, envelope: Envelope
    ) -> str:
        assert isinstance(envelope.content, bytes)
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        self.peers.append(session.peer)
        return "250 Message accepted"


@contextmanager
def smtp_server(port: int | None = None) -> Iterator[tuple[int, Inbox]]:
    """A real SMTP server on 127.0.0.1 (aiosmtpd), and what it received."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port or free_port())
    controller.start()
    try:
        yield controller.port, inbox
    finally:
        controller.stop()
