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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import Engine

from fulfill.db import engine_for
from fulfill.demo.city import City
from fulfill.demo.shop import DemoOrder, day_orders, seed_shop
from fulfill.demo.stack import Stack
from fulfill.demo.tally import Tally, Trouble
from fulfill.demo.watching import busy, figures_so_far

STEP = timedelta(minutes=1)
LOOK_EVERY = timedelta(minutes=10)  # how often the progress line reads the service's figures
DAY_HOURS = (6.5, 23.0)  # local: the first orders' waves are planned, the last vans are back
FAILED_SHARE = 0.05  # doors where nobody answers
SLOWER = {"same_day": "next_day", "next_day": "standard"}  # what a checkout offers instead
HANDOVER = timedelta(minutes=1)  # from the door to the parcel in hand (or the card left)
BACK_AND_LOAD = timedelta(minutes=20)  # from a route's last door to leaving on the next
SETTLE_S = 30.0  # at most this long a step waits for the service (speed max)


@dataclass(order=True)
class _Due:
    at: datetime
    seq: int
    body: dict[str, Any] = field(compare=False)


class Day:
    def __init__(
        self,
        stack: Stack,
        city: City,
        day: date,
        orders: int,
        seed: int,
        speed: float | None,
        trouble: Trouble | None = None,
    ) -> None:
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
        self._runs: dict[str, list[_Due]] = {}  # van -> its events, done or not
        self._done: set[str] = set()
        self._broken: set[str] = set()
        self._replans: dict[int, int] = {}  # wave -> the plan version the dispatcher asked for
        self._routes: dict[tuple[int, str], list[_Due]] = {}  # (wave, van) -> its route's events
        self._places: dict[str, dict[str, float]] = {}  # van -> where it last said it was
        self._external: dict[str, str] = {}  # order id -> the shop's order number

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
        with (
            self._client("shop") as shop,
            self._client("vans") as vans,
            self._client("dispatcher") as dispatcher,
        ):
            pending = list(self.orders)
            now = looked = start
            while now < end:
                if self.speed is None:
                    now = self.stack.clock.advance(STEP.total_seconds())
                else:
                    time.sleep(0.2)
                    now = self.stack.clock.now()
                self._trouble(now, shop)
                while pending and pending[0].at <= now:
                    self._place(shop, pending.pop(0))
                self._publish_replans(dispatcher)
                self._load_plans(dispatcher)
                self._drive(vans, now)
                if self.speed is None:
                    self._settle(now)
                if now - looked >= LOOK_EVERY:
                    self.tally.seen, looked = figures_so_far(self.engine), now
                progress(now, self.tally)
        self.stack.clock.set(self.stack.clock.now(), 0.0)
        self._settle(self.stack.clock.now(), patience_s=120)
        return self.tally

    # ---- the storefront ------------------------------------------------------------------

    def _place(self, shop: httpx.Client, order: DemoOrder) -> None:
        """The order at the level the customer chose; if that level is no longer offered
        (the wave is full, the cutoff passed), at the next slower one, as a checkout would."""
        body = order.body
        while True:
            key = {"Idempotency-Key": f"{body['external_id']}-{body['service_level']}"}
            response = shop.post("/v1/orders", json=body, headers=key)
            problem = "" if response.status_code == 201 else _problem(response)
            slower = SLOWER.get(body["service_level"])
            if problem != "service-level-unavailable" or slower is None:
                break
            body = {**body, "service_level": slower}
            self.tally.downgraded += 1
        if problem:
            self.tally.refused[problem] += 1
            return
        self.tally.placed[body["service_level"]] += 1
        self._external[response.json()["id"]] = body["external_id"]

    # ---- the vans --------------------------------------------------------------------------

    def _load_plans(self, dispatcher: httpx.Client) -> None:
        waves = dispatcher.get("/v1/waves", params={"date": self.day.isoformat()})
        for wave in waves.json() if waves.status_code == 200 else []:
            plan = wave.get("published_plan")
            if plan is None or plan["id"] in self._plans:
                continue
            self._plans.add(plan["id"])
            detail = dispatcher.get(f"/v1/plans/{plan['id']}").json()
            routes = {route["van"]: route for route in detail["routes"]}
            vans = {van for w, van in self._routes if w == wave["id"]} | set(routes)
            for van in sorted(vans):
                self._follow(wave["id"], van, routes.get(van), detail.get("depot"))

    def _publish_replans(self, dispatcher: httpx.Client) -> None:
        """The dispatcher publishes each plan asked for after a breakdown once it is made; if a
        van left meanwhile (409), the wave is planned again."""
        for wave, version in list(self._replans.items()):
            state = dispatcher.get(f"/v1/waves/{wave}").json()
            latest = state.get("latest_plan")
            if state["planned_version"] < version or latest is None:
                continue
            answer = dispatcher.post(f"/v1/plans/{latest['id']}/publish")
            if answer.status_code == 200:
                del self._replans[wave]
            elif answer.status_code == 409:
                asked = dispatcher.post(f"/v1/waves/{wave}/plan")
                self._replans[wave] = asked.raise_for_status().json()["version"]

    def _follow(
        self, wave: int, van: str, route: dict[str, Any] | None, depot: dict[str, float] | None
    ) -> None:
        """A van's route in a newly published plan of the wave (None: the plan leaves it out).
        A van already on its way keeps driving what it set out with (a new version keeps a
        started route), less the doors the new version gave to other vans (a rescue); one that
        has not left drops the route of the version before."""
        key = (wave, van)
        before = self._routes.pop(key, [])
        if before and before[0].body["id"] in self._done:
            kept = {s["fulfillment"] for s in route["stops"]} if route is not None else set()
            given = [d for d in before if d.body.get("stop") not in (None, *kept)]
            self._done.update(d.body["id"] for d in given)
            self._routes[key] = before
            return
        self._done.update(due.body["id"] for due in before)
        if route is not None:
            self._routes[key] = self._schedule(wave, route, depot)

    def _schedule(
        self, wave: int, route: dict[str, Any], depot: dict[str, float] | None
    ) -> list[_Due]:
        """The route as driven: travel slower in the traffic hours, some doors unanswered. The
        driver's app names the wave, so every report is about this route."""
        van = route["van"]
        app = {"van": van, "wave": wave}
        if not route["stops"] or van in self._broken:
            return []
        first = len(self._runs.get(van, []))
        # A van still out on an earlier route comes back and loads before it leaves again.
        at = planned_from = _time(route["depart_at"])
        back = max(
            (
                run[-1].at
                for (_, v), run in self._routes.items()
                if v == van and run and run[0].at < planned_from
            ),
            default=None,
        )
        if back is not None and back + BACK_AND_LOAD > at:
            at = back + BACK_AND_LOAD  # leaving late: each leg still takes its planned time
        self._push(van, at, {"type": "route_started", **app, **_where(depot)})
        here = _where(depot)
        for stop in route["stops"]:
            eta, leave = _time(stop["eta"]), _time(stop["departure"] or stop["eta"])
            travel = (eta - planned_from) * self._traffic(at)
            there = {"lat": stop["lat"], "lon": stop["lon"]}
            midway = {k: (here[k] + there[k]) / 2 for k in there} if here else there
            self._push(van, at + travel / 2, {"type": "position", **app, **midway})
            at, here = at + travel, there
            self._push(van, at, {"type": "arrived", **app, "stop": stop["fulfillment"]})
            outcome = self._outcome(self._external.get(stop["order"], stop["order"]))
            said = (
                {"reason": "nobody home"}
                if outcome == "failed"
                else {"proof": {"signed_by": "customer"}}
            )
            body = {"type": outcome, **app, "stop": stop["fulfillment"], **said}
            self._push(van, at + HANDOVER, body)
            at += max(leave - eta, HANDOVER + timedelta(minutes=1))
            planned_from = leave
        return self._runs[van][first:]

    def _traffic(self, at: datetime) -> float:
        start, end, factor = self.trouble.traffic
        return factor if self.local(start) <= at < self.local(end) else 1.0

    @staticmethod
    def _outcome(external_id: str) -> str:
        """Whether anyone answers the door: the same for an order whatever the run."""
        draw = int(hashlib.sha256(external_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        return "failed" if draw < FAILED_SHARE else "delivered"

    def _push(self, van: str, at: datetime, body: dict[str, Any]) -> _Due:
        self._seq += 1
        due = _Due(at, self._seq, {"id": f"demo-{van}-{self._seq}", "at": at.isoformat(), **body})
        heapq.heappush(self._events, due)
        self._runs.setdefault(van, []).append(due)
        return due

    def _drive(self, vans: httpx.Client, now: datetime) -> None:
        while self._events and self._events[0].at <= now:
            due = heapq.heappop(self._events)
            if due.body["id"] in self._done:
                continue
            self._done.add(due.body["id"])
            response = vans.post("/v1/driver-events", json=due.body)
            if response.status_code == 200 and "lat" in due.body:
                self._places[due.body["van"]] = {"lat": due.body["lat"], "lon": due.body["lon"]}
            outcome = due.body["type"]
            if response.status_code != 200:
                outcome = f"refused: {_problem(response)}"
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
        if "traffic jam" not in self._noted() and now >= self.local(self.trouble.jam[0]):
            self._jam(now)

    def _ahead(self, van: str, now: datetime) -> list[_Due]:
        return [d for d in self._runs[van] if d.at > now and d.body["id"] not in self._done]

    def _busiest(self, now: datetime) -> tuple[str, int] | None:
        """The van with the most doors still ahead, and how many."""
        doors = {
            van: sum(
                d.body.get("stop") is not None and d.body["type"] != "arrived"
                for d in self._ahead(van, now)
            )
            for van in self._runs
        }
        van = max(doors, key=lambda v: doors[v], default=None)
        return (van, doors[van]) if van is not None and doors[van] else None

    def _break_down(self, now: datetime) -> None:
        """The busiest van stops where it is (tried again each minute until a van is out); its
        driver reports nothing more, as a broken-down van would not, but phones the dispatcher,
        who takes the van out of service: the plans made from then on leave it out."""
        busiest = self._busiest(now)
        if busiest is None:
            return
        van, doors = busiest
        waiting = {
            wave for (wave, v), run in self._routes.items() if v == van and run and run[0].at > now
        }
        at_door = self._at_door(van, now)  # the driver finishes that handover first
        never = [
            d
            for d in self._ahead(van, now)
            if d.body.get("stop") != at_door or d.body["type"] == "arrived"
        ]
        self._done.update(d.body["id"] for d in never)
        self._broken.add(van)
        with self._client("dispatcher") as dispatcher:
            dispatcher.patch(f"/v1/vans/{van}", json={"active": False}).raise_for_status()
            for wave in waiting:  # its routes not yet on the road go to the other vans
                key = {"Idempotency-Key": f"replan-{wave}-{van}"}
                asked = dispatcher.post(f"/v1/waves/{wave}/plan", headers=key)
                self._replans[wave] = asked.raise_for_status().json()["version"]
        self._incident(now, "van breakdown", van=van, stops_left=doors, replanned=sorted(waiting))

    def _at_door(self, van: str, now: datetime) -> str | None:
        """The stop the van has reached and not yet handed its parcel over at."""
        been = [d.body for d in self._runs[van] if d.at <= now and d.body.get("stop")]
        return been[-1]["stop"] if been and been[-1]["type"] == "arrived" else None

    def _jam(self, now: datetime) -> None:
        """The busiest van stands still in a jam, its driver's phone giving its last place every
        ten minutes; then it goes on as planned, that much later."""
        busiest = self._busiest(now)
        if busiest is None:
            return
        (van, doors), minutes = busiest, self.trouble.jam[1]
        ahead = self._ahead(van, now)
        self._done.update(d.body["id"] for d in ahead)
        delay = timedelta(minutes=minutes)
        later = {d.body["id"]: self._push(van, d.at + delay, _again(d.body)) for d in ahead}
        for key, run in self._routes.items():
            if key[1] == van:
                self._routes[key] = [later.get(d.body["id"], d) for d in run]
        for k in range(10, minutes, 10) if van in self._places else ():
            ping = {"type": "position", "van": van, **self._places[van]}
            self._push(van, now + timedelta(minutes=k), ping)
        self._incident(now, "traffic jam", van=van, minutes=minutes, stops_left=doors)

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
        return httpx.Client(
            base_url=self.stack.url, timeout=60, headers={"Authorization": f"Bearer {token}"}
        )


def _problem(response: httpx.Response) -> str:
    """The last part of a problem+json type: out-of-stock, service-level-unavailable..."""
    try:
        kind = str(response.json().get("type", ""))
    except ValueError:
        kind = ""
    return kind.rsplit("/", 1)[-1] or f"http-{response.status_code}"


def _again(body: dict[str, Any]) -> dict[str, Any]:
    """A driver event to send again later: what it says, without its id and time."""
    return {k: v for k, v in body.items() if k not in ("id", "at")}


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _where(depot: dict[str, float] | None) -> dict[str, float]:
    return {"lat": depot["lat"], "lon": depot["lon"]} if depot else {}
