"""A sandbox parcel carrier over HTTP, for tests, the demo and the tracking bench.

Its parcels live the scripted lives of ``fulfill_carriers.sandbox.lives``.

The clock runs ``speed`` simulated seconds per real second from the start, plus whatever
``POST /sandbox/clock`` adds, so a test can jump a parcel's life forward at once.

It is polled at ``GET /v1/tracking?numbers=...`` (at most 100 a call) and, when a webhook URL
is set, pushes each event as it happens, signed like ``fulfill_carriers.signatures`` under
``Sandbox-Signature``. ``/sandbox/*`` is ours: trouble on demand (an outage, answers that are
not JSON, a delay, a request rate above which it answers 429), injected events, and what it
holds.

    python -m fulfill_carriers.sandbox.server --port 8767 --speed 60 \\
        --mix delivered=0.8,failed_attempt=0.1,weather=0.05,lost=0.05 \\
        --webhook-url http://127.0.0.1:8000/v1/carriers/sandbox/webhooks --webhook-secret S
"""

from __future__ import annotations

import argparse
import json
import threading
from datetime import datetime
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from fulfill_carriers.sandbox.lives import (
    CODES,
    DEFAULT_MIX,
    LIVES,
    CarrierState,
    SandboxEvent,
    SandboxParcel,
    parse_mix,
)
from fulfill_carriers.sandboxing import add_trouble, stamp
from fulfill_carriers.signatures import sign

SIGNATURE_HEADER = "Sandbox-Signature"
MAX_NUMBERS = 100


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _refuse(status: int, message: str) -> Response:
    return _error(status, "rate_limited" if status == 429 else "unavailable", message)


def sandbox_app(state: CarrierState | None = None) -> FastAPI:
    state = state or CarrierState()
    app = FastAPI(title="Sandbox parcel carrier (fulfill)")
    app.state.carrier = state

    add_trouble(app, state, _refuse)
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
                "eta": stamp(parcel.events[0].eta or parcel.created),
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
                        "eta": stamp(events[-1].eta) if events and events[-1].eta else None,
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
    @app.post("/sandbox/clock")
    def advance(body: dict[str, Any]) -> dict[str, Any]:
        with state.lock:
            state.offset_s += float(body.get("advance_s", 0))
            return {"now": stamp(state.now())}

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
                "now": stamp(now),
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
