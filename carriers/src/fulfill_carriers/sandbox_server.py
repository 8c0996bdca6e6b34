"""A sandbox parcel carrier over HTTP, for tests, the demo and the tracking bench.

Each parcel lives a scripted life on the sandbox's clock: information received, picked up,
facility scans, out for delivery, delivered; or a failed attempt and a new run the next day, a
weather delay, damage, a wrong address, a refusal (each then returned to sender), a parcel
held at a pickup point, or one that is lost (its scans simply stop). The life is chosen per
parcel from a seeded mix, or asked for by name when the shipment is created.

The clock runs ``speed`` simulated seconds per real second from the start, plus whatever
``POST /sandbox/clock`` adds, so a test can jump a parcel's life forward at once.

It is polled at ``GET /v1/tracking?numbers=...`` (at most 100 a call) and, when a webhook URL
is set, pushes each event as it happens, signed like ``fulfill_carriers.signatures`` under
``Sandbox-Signature``. ``/sandbox/*`` is ours: trouble on demand (an outage, answers that are
not JSON, a delay, a request rate above which it answers 429), injected events, and what it
holds.

    python -m fulfill_carriers.sandbox_server --port 8767 --speed 60 \\
        --mix delivered=0.8,failed_attempt=0.1,weather=0.05,lost=0.05 \\
        --webhook-url http://127.0.0.1:8000/v1/carriers/sandbox/webhooks --webhook-secret S
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from fulfill_carriers.signatures import sign

SIGNATURE_HEADER = "Sandbox-Signature"
MAX_NUMBERS = 100
HOUR = 3600

# The carrier's own codes and words, as a real carrier would send them.
CODES: dict[str, str] = {
    "CR": "Shipment information received",
    "PU": "Picked up",
    "AF": "Arrived at sort facility",
    "DF": "Departed sort facility",
    "OD": "Out for delivery",
    "DL": "Delivered",
    "NH": "Delivery attempted: nobody home, we will try again",
    "HP": "Held at pickup point",
    "PK": "Collected at pickup point",
    "WX": "Delayed by weather",
    "DM": "Damaged in transit",
    "AD": "Address problem: cannot deliver",
    "RF": "Refused by recipient",
    "RS": "Returning to sender",
    "RT": "Returned to sender",
    "CX": "Shipment cancelled",
}

# Each life: (hours after creation, code). The ETA is the last "DL"/"PK" of the life as planned
# at first, except where the script moves it (weather).
LIVES: dict[str, tuple[tuple[float, str], ...]] = {
    "delivered": ((0, "CR"), (1, "PU"), (3, "AF"), (5, "DF"), (20, "AF"), (22, "OD"), (24, "DL")),
    "failed_attempt": (
        (0, "CR"),
        (1, "PU"),
        (3, "AF"),
        (5, "DF"),
        (20, "AF"),
        (22, "OD"),
        (24, "NH"),
        (46, "OD"),
        (48, "DL"),
    ),
    "pickup": (
        (0, "CR"),
        (1, "PU"),
        (3, "AF"),
        (5, "DF"),
        (20, "AF"),
        (22, "OD"),
        (24, "NH"),
        (26, "HP"),
        (50, "PK"),
    ),
    "weather": (
        (0, "CR"),
        (1, "PU"),
        (3, "AF"),
        (5, "DF"),
        (12, "WX"),
        (40, "AF"),
        (46, "OD"),
        (48, "DL"),
    ),
    "damaged": ((0, "CR"), (1, "PU"), (3, "AF"), (6, "DM"), (8, "RS"), (40, "RT")),
    "address": (
        (0, "CR"),
        (1, "PU"),
        (3, "AF"),
        (5, "DF"),
        (20, "AF"),
        (22, "OD"),
        (23, "AD"),
        (26, "RS"),
        (60, "RT"),
    ),
    "refused": (
        (0, "CR"),
        (1, "PU"),
        (3, "AF"),
        (5, "DF"),
        (20, "AF"),
        (22, "OD"),
        (24, "RF"),
        (26, "RS"),
        (60, "RT"),
    ),
    "lost": ((0, "CR"), (1, "PU"), (3, "AF"), (5, "DF")),
}
DEFAULT_MIX = {
    "delivered": 0.86,
    "failed_attempt": 0.04,
    "pickup": 0.02,
    "weather": 0.03,
    "damaged": 0.01,
    "address": 0.015,
    "refused": 0.01,
    "lost": 0.015,
}
PLANNED_ARRIVAL_H = 24.0  # what the carrier promises at creation, whatever the life


@dataclass
class SandboxEvent:
    id: str
    code: str
    at: datetime
    location: str
    eta: datetime | None

    def payload(self, tracking_number: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "tracking_number": tracking_number,
            "code": self.code,
            "description": CODES[self.code],
            "at": _stamp(self.at),
            "location": self.location,
            "eta": _stamp(self.eta) if self.eta else None,
        }


@dataclass
class SandboxParcel:
    tracking_number: str
    reference: str
    life: str
    created: datetime
    events: list[SandboxEvent]  # the whole scripted life, some of it still in the future

    def due(self, now: datetime) -> list[SandboxEvent]:
        return [e for e in self.events if e.at <= now]


@dataclass
class CarrierState:
    speed: float = 1.0
    seed: int = 0
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    webhook_url: str | None = None
    webhook_secret: str = ""
    started: float = field(default_factory=time.time)
    offset_s: float = 0.0
    parcels: dict[str, SandboxParcel] = field(default_factory=dict)
    by_reference: dict[str, str] = field(default_factory=dict)
    pushed: set[str] = field(default_factory=set)  # event ids already sent by webhook
    down: bool = False
    garbage: bool = False
    delay_s: float = 0.0
    rate_per_s: float | None = None
    calls: dict[str, int] = field(default_factory=dict)
    window: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    clock: Callable[[], datetime] | None = None  # a clock of the caller's (a demo's day)

    def now(self) -> datetime:
        if self.clock is not None:
            return self.clock() + timedelta(seconds=self.offset_s)
        simulated = (time.time() - self.started) * self.speed + self.offset_s
        return datetime.fromtimestamp(self.started + simulated, UTC)

    def create(self, reference: str, life: str | None, city: str) -> SandboxParcel:
        if reference in self.by_reference:
            return self.parcels[self.by_reference[reference]]
        rng = random.Random(f"{self.seed}:{reference}")
        life = life or rng.choices(list(self.mix), weights=list(self.mix.values()))[0]
        number = "SBX" + f"{uuid.uuid5(uuid.NAMESPACE_URL, reference).int % 10**10:010d}"
        created = self.now()
        jitter = rng.uniform(0.8, 1.2)
        planned = created + timedelta(hours=PLANNED_ARRIVAL_H * jitter)
        events, eta = [], planned
        for k, (hours, code) in enumerate(LIVES[life]):
            at = created + timedelta(hours=hours * jitter, seconds=k)  # distinct, in order
            if code == "WX":
                eta = planned + timedelta(hours=24)
            place = "Sort centre" if code in ("AF", "DF", "DM", "WX") else city
            events.append(SandboxEvent(f"{number}-{k}", code, at, place, eta))
        parcel = SandboxParcel(number, reference, life, created, events)
        self.parcels[number] = parcel
        self.by_reference[reference] = number
        return parcel

    def over_rate(self) -> bool:
        if not self.rate_per_s:
            return False
        moment = time.monotonic()
        self.window = [t for t in self.window if moment - t < 1.0]
        if len(self.window) >= self.rate_per_s:
            return True
        self.window.append(moment)
        return False


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def sandbox_app(state: CarrierState | None = None) -> FastAPI:
    state = state or CarrierState()
    app = FastAPI(title="Sandbox parcel carrier (fulfill)")
    app.state.carrier = state

    @app.middleware("http")
    async def trouble(request: Request, call_next: Any) -> Any:
        if request.url.path.startswith("/sandbox/"):
            return await call_next(request)
        with state.lock:
            state.calls[request.url.path] = state.calls.get(request.url.path, 0) + 1
            limited = state.over_rate()
        if state.delay_s:
            await asyncio.sleep(state.delay_s)
        if state.down:
            return _error(503, "unavailable", "down for maintenance")
        if state.garbage:
            return PlainTextResponse("<html><body>Gateway error</body></html>", 200)
        if limited:
            return _error(429, "rate_limited", f"more than {state.rate_per_s} requests a second")
        return await call_next(request)

    _shipment_routes(app, state)
    _control_routes(app, state)
    if state.webhook_url:
        pusher = WebhookPusher(state)
        app.router.on_startup.append(pusher.start)
        app.router.on_shutdown.append(pusher.stop)
    return app


def _shipment_routes(app: FastAPI, state: CarrierState) -> None:
    @app.post("/v1/shipments", status_code=201)
    def create(body: dict[str, Any]) -> Response:
        recipient = body.get("recipient") or {}
        missing = [k for k in ("reference", "weight_kg") if body.get(k) in (None, "")]
        missing += [f"recipient.{k}" for k in ("name", "lat", "lon") if recipient.get(k) is None]
        if missing:
            return _error(400, "invalid", f"missing: {', '.join(missing)}")
        life = body.get("scenario")
        if life is not None and life not in LIVES:
            return _error(400, "invalid", f"unknown scenario {life}; one of {sorted(LIVES)}")
        if not 0 < float(body["weight_kg"]) <= 70:
            return _error(400, "invalid", "weight_kg must be in (0, 70]")
        with state.lock:
            parcel = state.create(str(body["reference"]), life, recipient.get("city") or "Town")
        return JSONResponse(
            {
                "tracking_number": parcel.tracking_number,
                "label_url": f"/v1/labels/{parcel.tracking_number}.pdf",
                "eta": _stamp(parcel.events[0].eta or parcel.created),
            },
            status_code=201,
        )

    @app.get("/v1/tracking")
    def track(numbers: str = "") -> Response:
        wanted = [n for n in numbers.split(",") if n]
        if not wanted or len(wanted) > MAX_NUMBERS:
            return _error(400, "invalid", f"give 1 to {MAX_NUMBERS} tracking numbers")
        with state.lock:
            now = state.now()
            found, unknown = [], []
            for number in wanted:
                parcel = state.parcels.get(number)
                if parcel is None:
                    unknown.append(number)
                    continue
                events = parcel.due(now)
                found.append(
                    {
                        "tracking_number": number,
                        "events": [e.payload(number) for e in events],
                        "eta": _stamp(events[-1].eta) if events and events[-1].eta else None,
                    }
                )
        return JSONResponse({"parcels": found, "unknown": unknown})

    @app.post("/v1/shipments/{number}/cancel")
    def cancel(number: str) -> Response:
        with state.lock:
            parcel = state.parcels.get(number)
            if parcel is None:
                return _error(404, "not_found", f"no shipment {number}")
            now = state.now()
            codes = [e.code for e in parcel.due(now)]
            if "CX" in codes:
                return JSONResponse({"tracking_number": number, "cancelled": True})
            if set(codes) - {"CR"}:
                return _error(409, "too_late", f"{number} is already on its way")
            parcel.events = [
                *parcel.due(now),
                SandboxEvent(f"{number}-x", "CX", now, "Sender", None),
            ]
        return JSONResponse({"tracking_number": number, "cancelled": True})


def _control_routes(app: FastAPI, state: CarrierState) -> None:
    @app.post("/sandbox/trouble")
    def trouble_on_demand(body: dict[str, Any]) -> dict[str, Any]:
        with state.lock:
            state.down = bool(body.get("down", state.down))
            state.garbage = bool(body.get("garbage", state.garbage))
            state.delay_s = float(body.get("delay_s", state.delay_s))
            rate = body.get("rate_per_s", state.rate_per_s)
            state.rate_per_s = float(rate) if rate else None
            return {
                "down": state.down,
                "garbage": state.garbage,
                "delay_s": state.delay_s,
                "rate_per_s": state.rate_per_s,
            }

    @app.post("/sandbox/clock")
    def advance(body: dict[str, Any]) -> dict[str, Any]:
        with state.lock:
            state.offset_s += float(body.get("advance_s", 0))
            return {"now": _stamp(state.now())}

    @app.post("/sandbox/parcels/{number}/events")
    def inject(number: str, body: dict[str, Any]) -> Response:
        """An event as the carrier might send it late, twice, or out of its order."""
        code, at = body.get("code"), body.get("at")
        if code not in CODES or not at:
            return _error(400, "invalid", "give a known code and at")
        with state.lock:
            parcel = state.parcels.get(number)
            if parcel is None:
                return _error(404, "not_found", f"no shipment {number}")
            when = datetime.fromisoformat(str(at).replace("Z", "+00:00"))
            event = SandboxEvent(
                str(body.get("id") or f"{number}-i{len(parcel.events)}"),
                code,
                when,
                str(body.get("location") or "Sort centre"),
                None,
            )
            parcel.events.append(event)
            return JSONResponse(event.payload(number), status_code=201)

    @app.get("/sandbox/parcels")
    def held() -> dict[str, Any]:
        with state.lock:
            now = state.now()
            return {
                "now": _stamp(now),
                "calls": dict(state.calls),
                "pushed": len(state.pushed),
                "parcels": {n: _summary(p, now) for n, p in state.parcels.items()},
            }


def _summary(parcel: SandboxParcel, now: datetime) -> dict[str, Any]:
    codes = [e.code for e in parcel.due(now)]
    return {"life": parcel.life, "reference": parcel.reference, "codes": codes}


class WebhookPusher:
    """Sends each event once it is due, signed, in batches; what fails is sent again later."""

    def __init__(self, state: CarrierState, every_s: float = 0.2) -> None:
        self.state = state
        self.every_s = every_s
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="sandbox-webhooks")

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)

    def _run(self) -> None:
        assert self.state.webhook_url is not None
        with httpx.Client(timeout=5.0) as client:
            while not self.stopping.wait(self.every_s):
                batch = self._due()
                if batch and self._send(client, batch):
                    with self.state.lock:
                        self.state.pushed.update(e["id"] for e in batch)

    def _due(self) -> list[dict[str, Any]]:
        with self.state.lock:
            now = self.state.now()
            return [
                e.payload(p.tracking_number)
                for p in self.state.parcels.values()
                for e in p.due(now)
                if e.id not in self.state.pushed
            ][:500]

    def _send(self, client: httpx.Client, batch: list[dict[str, Any]]) -> bool:
        body = json.dumps({"events": batch}, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(body, self.state.webhook_secret),
        }
        try:
            response = client.post(str(self.state.webhook_url), content=body, headers=headers)
        except httpx.HTTPError:
            return False
        return response.status_code < 300


def parse_mix(text: str) -> dict[str, float]:
    """``delivered=0.9,lost=0.1``: how often each life is chosen for a new parcel."""
    mix: dict[str, float] = {}
    for part in text.split(","):
        life, _, weight = part.partition("=")
        if life.strip() not in LIVES:
            raise argparse.ArgumentTypeError(f"unknown life {life!r}; one of {', '.join(LIVES)}")
        try:
            mix[life.strip()] = float(weight)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r} needs a number after =") from None
    if not mix or sum(mix.values()) <= 0 or min(mix.values()) < 0:
        raise argparse.ArgumentTypeError("give some lives non-negative weights that add up")
    return mix


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="Sandbox parcel carrier")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8767)
    parser.add_argument("--speed", type=float, default=1.0, help="simulated s per real s")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--webhook-url", default=None)
    parser.add_argument("--webhook-secret", default="")
    parser.add_argument(
        "--mix",
        type=parse_mix,
        default=dict(DEFAULT_MIX),
        help=f"life=weight,... of {', '.join(LIVES)} (default: mostly delivered)",
    )
    args = parser.parse_args()
    state = CarrierState(
        speed=args.speed,
        seed=args.seed,
        mix=args.mix,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
    )
    uvicorn.run(sandbox_app(state), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
