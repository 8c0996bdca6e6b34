"""What every sandbox here shares: trouble on demand, counted calls, and UTC stamps.

A sandbox imitates one outside API (a carrier, Amazon, an SMS provider) closely enough that
the service's retries, circuit breakers and fallbacks can be tested against it: it can be
down, slow, answer something that is not JSON, or throttle above a request rate, each turned
on and off through ``POST /sandbox/trouble``. Paths under ``/sandbox/`` are never troubled.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response

# How a sandbox says no in its API's own shape: (HTTP status, message) to a response.
Refusal = Callable[[int, str], Response]


@dataclass
class Trouble:
    down: bool = False
    garbage: bool = False  # answers an HTML error page with 200, as a broken proxy does
    delay_s: float = 0.0
    rate_per_s: float | None = None
    calls: dict[str, int] = field(default_factory=dict)  # per path, troubled or not
    window: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def over_rate(self) -> bool:
        if not self.rate_per_s:
            return False
        moment = time.monotonic()
        self.window = [t for t in self.window if moment - t < 1.0]
        if len(self.window) >= self.rate_per_s:
            return True
        self.window.append(moment)
        return False

    def change(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.down = bool(body.get("down", self.down))
            self.garbage = bool(body.get("garbage", self.garbage))
            self.delay_s = float(body.get("delay_s", self.delay_s))
            rate = body.get("rate_per_s", self.rate_per_s)
            self.rate_per_s = float(rate) if rate else None
            return {
                "down": self.down,
                "garbage": self.garbage,
                "delay_s": self.delay_s,
                "rate_per_s": self.rate_per_s,
            }


def add_trouble(app: FastAPI, trouble: Trouble, refuse: Refusal) -> None:
    """Trouble in front of every API path of ``app``, and ``POST /sandbox/trouble`` to set it."""

    @app.middleware("http")
    async def troubled(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.url.path.startswith("/sandbox/"):
            return await call_next(request)
        with trouble.lock:
            trouble.calls[request.url.path] = trouble.calls.get(request.url.path, 0) + 1
            limited = trouble.over_rate()
        if trouble.delay_s:
            await asyncio.sleep(trouble.delay_s)  # slow, without stalling the other callers
        if trouble.down:
            return refuse(503, "down for maintenance")
        if trouble.garbage:
            return PlainTextResponse("<html><body>Gateway error</body></html>", 200)
        if limited:
            return refuse(429, f"more than {trouble.rate_per_s} requests a second")
        return await call_next(request)

    @app.post("/sandbox/trouble")
    def trouble_on_demand(body: dict[str, Any]) -> dict[str, Any]:
        return trouble.change(body)


def stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
