"""One simulated day: orders through the public API on the shop's daily curve, vans driving
their published routes (driver events), and trouble on schedule. The service runs as it would
in production; this is the world around it.

At ``speed`` N the shared clock runs N times faster than the real one; at ``max`` it stops, and
each simulated minute begins once the service has done what the last one gave it.
"""

from __future__ import annotations

import hashlib
import heapq
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from fulfill.db import engine_for
from fulfill.demo.city import City
from fulfill.demo.shop import DemoOrder, day_orders, seed_shop
from fulfill.demo.stack import LEASE_S, Stack
from fulfill.dispatch.models import Wave, WaveStatus
from fulfill.outbox.models import OutboxEvent, OutboxStatus
from fulfill.tracking.models import WebhookReceipt

STEP = timedelta(minutes=1)
DAY_HOURS = (6.5, 23.0)  # local: the first orders' waves are planned, the last vans are back
FAILED_SHARE = 0.05  # doors where nobody answers
SETTLE_S = 30.0  # at most this long a step waits for the service (speed max)


@dataclass(frozen=True)
class Trouble:
    """What goes wrong today, at local hours."""

    carrier_outage: tuple[float, float] = (11.0, 12.0)
    stock_out: float = 12.0  # the warehouse's best seller is found missing
    breakdown: float = 14.0  # the van with the most stops left stops for good
    traffic: tuple[float, float, float] = (16.5, 18.5, 1.6)  # from, to, travel time factor


@dataclass
class Tally:
    placed: Counter[str] = field(default_factory=Counter)  # by service level
    refused: Counter[str] = field(default_factory=Counter)  # by problem type
    driver_events: Counter[str] = field(default_factory=Counter)
    incidents: list[dict[str, Any]] = field(default_factory=list)

    @property
    def orders(self) -> int:
        return sum(self.placed.values()) + sum(self.refused.values())


@dataclass(order=True)
class _Due:
    at: datetime
    seq: int
    body: dict[str, Any] = field(compare=False)


class Day:
    def __init__(
        self, stack: Stack, city: City, day: date, orders: int, seed: int, speed: float | None,
        trouble: Trouble | None = None,
    ) -> None:  # fmt: skip
        self.stack, self.city, self.day, self.speed = stack, city, day, speed
        self.zone = ZoneInfo(city.timezone)
        self.rng = random.Random(seed)
        self.trouble = trouble or Trouble()
        self.orders: list[DemoOrder] = day_orders(city, day, orders, random.Random(seed + 1))
        self.tally = Tally()
        self.engine: Engine = engine_for(stack.database_url)
        self._events: list[_Due] = []
        self._seq = 0
        self._plans: set[int] = set()
        self._runs: dict[str, list[_Due]] = {}  # van -> its pending events (for a breakdown)
        self._done: set[str] = set()

    def local(self, hours: float) -> datetime:
        midnight = datetime.combine(self.day, clock_time(0), tzinfo=self.zone)
        return (midnight + timedelta(hours=hours)).astimezone(ZoneInfo("UTC"))

    def run(self, progress: Callable[[datetime, Tally], None]) -> Tally:
        with self._client("admin") as admin:
            fba = seed_shop(admin, self.city, self.rng)
        with self.stack.mcf.lock:
            self.stack.mcf.inventory.update(fba)
        start, end = self.local(DAY_HOURS[0]), self.local(DAY_HOURS[1])
        self.stack.clock.set(start, self.speed or 0.0)
        with self._client("shop") as shop, self._client("vans") as vans, \
                self._client("dispatcher") as dispatcher:  # fmt: skip
            pending = list(self.orders)
            now = start
            while now < end:
                if self.speed is None:
                    now = self.stack.clock.advance(STEP.total_seconds())
                else:
                    time.sleep(0.2)
                    now = self.stack.clock.now()
                self._trouble(now, shop)
                while pending and pending[0].at <= now:
                    self._place(shop, pending.pop(0))
                self._load_plans(dispatcher)
                self._drive(vans, now)
                if self.speed is None:
                    self._settle(now)
                progress(now, self.tally)
        self.stack.clock.set(self.stack.clock.now(), 0.0)
        self._settle(self.stack.clock.now(), patience_s=120)
        return self.tally

    # ---- the storefront ------------------------------------------------------------------

    def _place(self, shop: httpx.Client, order: DemoOrder) -> None:
        key = {"Idempotency-Key": order.body["external_id"]}
        response = shop.post("/v1/orders", json=order.body, headers=key)
        if response.status_code == 201:
            self.tally.placed[order.body["service_level"]] += 1
        else:
            self.tally.refused[response.json().get("type", "").rsplit("/", 1)[-1] or "error"] += 1

    # ---- the vans --------------------------------------------------------------------------

    def _load_plans(self, dispatcher: httpx.Client) -> None:
        waves = dispatcher.get("/v1/waves", params={"date": self.day.isoformat()})
        for wave in waves.json() if waves.status_code == 200 else []:
            plan = wave.get("published_plan")
            if plan is None or plan["id"] in self._plans:
                continue
            self._plans.add(plan["id"])
            detail = dispatcher.get(f"/v1/plans/{plan['id']}").json()
            for route in detail["routes"]:
                self._schedule(route, detail.get("depot"))

    def _schedule(self, route: dict[str, Any], depot: dict[str, float] | None) -> None:
        """The route as driven: travel slower in the traffic hours, some doors unanswered."""
        van = route["van"]
        if not route["stops"]:
            return
        at = _time(route["depart_at"])
        self._push(van, at, {"type": "route_started", "van": van, **_where(depot)})
        planned_from = at
        for stop in route["stops"]:
            eta, leave = _time(stop["eta"]), _time(stop["departure"] or stop["eta"])
            travel = (eta - planned_from) * self._traffic(at)
            halfway = at + travel / 2
            self._push(van, halfway, {"type": "position", "van": van, "lat": stop["lat"],
                                      "lon": stop["lon"]})  # fmt: skip
            at += travel
            self._push(van, at, {"type": "arrived", "van": van, "stop": stop["fulfillment"]})
            at += max(leave - eta, timedelta(minutes=2))
            outcome = self._outcome(stop["fulfillment"])
            self._push(van, at, {"type": outcome, "van": van, "stop": stop["fulfillment"],
                                 **({"reason": "nobody home"} if outcome == "failed"
                                    else {"proof": {"signed_by": "customer"}})})  # fmt: skip
            planned_from = leave

    def _traffic(self, at: datetime) -> float:
        start, end, factor = self.trouble.traffic
        return factor if self.local(start) <= at < self.local(end) else 1.0

    @staticmethod
    def _outcome(fulfillment: str) -> str:
        draw = int(hashlib.sha256(fulfillment.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        return "failed" if draw < FAILED_SHARE else "delivered"

    def _push(self, van: str, at: datetime, body: dict[str, Any]) -> None:
        self._seq += 1
        due = _Due(at, self._seq, {"id": f"demo-{van}-{self._seq}", "at": at.isoformat(), **body})
        heapq.heappush(self._events, due)
        self._runs.setdefault(van, []).append(due)

    def _drive(self, vans: httpx.Client, now: datetime) -> None:
        while self._events and self._events[0].at <= now:
            due = heapq.heappop(self._events)
            if due.body["id"] in self._done:
                continue
            self._done.add(due.body["id"])
            response = vans.post("/v1/driver-events", json=due.body)
            outcome = due.body["type"] if response.status_code == 200 else "refused"
            self.tally.driver_events[outcome] += 1

    # ---- trouble ---------------------------------------------------------------------------

    def _trouble(self, now: datetime, shop: httpx.Client) -> None:
        outage = self.trouble.carrier_outage
        down = self.local(outage[0]) <= now < self.local(outage[1])
        if down != self.stack.carrier.down:
            self.stack.carrier.down = down
            self._incident(now, "carrier outage" if down else "carrier back")
        if "stock-out" not in self._noted() and now >= self.local(self.trouble.stock_out):
            with self._client("admin") as admin:
                admin.put("/v1/nodes/WH1/stock", json=[{"sku": "SKU-0000", "on_hand": 0}])
            self._incident(now, "stock-out", sku="SKU-0000", node="WH1")
        if "van breakdown" not in self._noted() and now >= self.local(self.trouble.breakdown):
            self._break_down(now)

    def _break_down(self, now: datetime) -> None:
        """The van with the most stops still ahead stops where it is; its driver reports
        nothing more, as a broken-down van would not."""
        left = {van: [d for d in run if d.at > now and d.body["type"] == "delivered"]
                for van, run in self._runs.items()}  # fmt: skip
        van = max(left, key=lambda v: len(left[v]), default=None)
        if van is None or not left[van]:
            return
        for due in self._runs[van]:
            if due.at > now:
                self._done.add(due.body["id"])
        self._incident(now, "van breakdown", van=van, stops_left=len(left[van]))

    def _incident(self, at: datetime, what: str, **details: Any) -> None:
        self.tally.incidents.append({"at": at.isoformat(), "what": what, **details})

    def _noted(self) -> set[str]:
        return {incident["what"] for incident in self.tally.incidents}

    # ---- waiting for the service ------------------------------------------------------------

    def _settle(self, now: datetime, patience_s: float = SETTLE_S) -> None:
        """Until nothing due is left undone: events to relay, webhooks to apply, waves past
        their cutoff without a published plan."""
        deadline = time.monotonic() + patience_s
        while time.monotonic() < deadline and busy(self.engine, now):
            time.sleep(0.05)

    def _client(self, key: str) -> httpx.Client:
        token = getattr(self.stack.keys, key)
        return httpx.Client(base_url=self.stack.url, timeout=60,
                            headers={"Authorization": f"Bearer {token}"})  # fmt: skip


def busy(engine: Engine, now: datetime) -> bool:
    """Whether the service has work the clock must wait for: events due or being relayed (claimed,
    with a lease that ends beyond any retry's backoff), webhooks not yet applied, waves past
    their cutoff without a plan."""
    in_flight = now + timedelta(seconds=LEASE_S / 2)
    with Session(engine) as session:
        relaying = session.exec(
            select(func.count()).select_from(OutboxEvent).where(
                OutboxEvent.status == OutboxStatus.PENDING,
                (col(OutboxEvent.next_run_at) <= now)
                | ((col(OutboxEvent.attempts) > 0) & (col(OutboxEvent.next_run_at) > in_flight)))
        ).one()  # fmt: skip
        applying = session.exec(
            select(func.count()).select_from(WebhookReceipt)
            .where(col(WebhookReceipt.processed_at).is_(None))
        ).one()  # fmt: skip
        planning = session.exec(
            select(func.count()).select_from(Wave).where(
                Wave.status == WaveStatus.CLOSED, col(Wave.planned_version) < col(Wave.version))
        ).one()  # fmt: skip
    return bool(relaying or applying or planning)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _where(depot: dict[str, float] | None) -> dict[str, float]:
    return {"lat": depot["lat"], "lon": depot["lon"]} if depot else {}
