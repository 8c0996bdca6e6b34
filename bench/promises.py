"""Same-day promises: the rule of parcels and kilograms against the live plan, on the same demand
and the same fleet, in one run.

One node, one wave (cutoff 10:00, the window 11:00 to 14:00 local, as the settings give it),
vans with room for more parcels than their hours can deliver. The same same-day carts arrive one
by one, and each rule says yes or no:

- (a) **capacity**, the rule before the live plan: yes while the wave's parcels and kilograms fit
  the vans' capacity; the plan at the cutoff then finds what the promises could not see, and the
  stops it leaves out are moved (promises broken).
- (b) **live plan**: yes when the door fits the wave's live plan (the planner's insertion check,
  the same code the service runs: ``dispatch.live_routes``), and the accepted door is inserted;
  every ``--polish-every`` accepted carts the live plan is polished as the service's background
  task does (``dispatch.polishing``); the plan at the cutoff starts from the live plan and keeps
  it if the solve serves fewer stops. The same without the polish is shown too (insertion only).

Then the promise's latency against a 1,000-stop open wave (``live_routes.fit``: the matrices grown
by one door and the insertion check, as a storefront's cart asks), and how far the live plan at
the cutoff is from a fresh solve of the same wave with a long time limit.

    uv run python bench/promises.py [--quick] [--orders 1400] [--vans 20] [--time-limit 10]

Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from fulfill.config import Settings
from fulfill.dispatch import live_routes, planning, polishing
from fulfill.dispatch.models import Van, Wave
from fulfill.dispatch.repository import Delivery
from fulfill.dispatch.solving import solved_or_live
from fulfill.inventory.models import Node
from fulfill_routing import Solution, solve

console = Console(stderr=True)
CENTRE = (53.5461, -113.4938)  # Edmonton
CUTOFF = datetime(2026, 12, 7, 17, 0, tzinfo=UTC)  # 10:00 in Edmonton


@dataclass(frozen=True)
class Setup:
    settings: Settings
    node: Node
    wave: Wave
    vans: list[Van]


def setup(vans: int, capacity: int) -> Setup:
    settings = Settings()
    node = Node(
        id=1,
        code="WH1",
        name="bench",
        kind="warehouse",
        lat=CENTRE[0] + 0.03,
        lon=CENTRE[1] + 0.07,
        timezone="America/Edmonton",
        same_day_radius_km=35,
        wave_cutoffs=["10:00"],
    )
    wave = Wave(id=1, node_id=1, local_date="2026-12-07", cutoff_at=CUTOFF)
    fleet = [
        Van(
            id=k + 1,
            code=f"VAN{k + 1:02d}",
            node_id=1,
            capacity_parcels=capacity,
            capacity_kg=capacity * 10,
            shift_start="09:00",
            shift_end="19:00",
        )
        for k in range(vans)
    ]
    return Setup(settings, node, wave, fleet)


def demand(count: int, seed: int, settings: Settings, prefix: str = "f") -> list[Delivery]:
    """Doors spread over the city as the demo spreads them, in the order their carts arrive."""
    rng = np.random.default_rng(seed)
    start = CUTOFF + timedelta(minutes=settings.same_day_window_offset_min)
    end = start + timedelta(minutes=settings.same_day_window_length_min)
    return [
        Delivery(
            fulfillment_id=f"{prefix}{k:05d}",
            order_id=f"o{k:05d}",
            lat=float(CENTRE[0] + rng.normal(0, 0.05)),
            lon=float(CENTRE[1] + rng.normal(0, 0.09)),
            window_start=start,
            window_end=end,
            parcels=1,
            weight_kg=float(rng.uniform(0.3, 4.0)),
        )
        for k in range(count)
    ]


def empty_plan(s: Setup) -> live_routes.LivePlan:
    wp = planning.build_problem(s.node, s.wave, [], s.vans, s.settings)
    wp = planning.with_bookings(wp, s.vans, {})
    return live_routes.LivePlan(
        wp, Solution(routes=(), cost=0, distance=0, engine="live"), {}, ((), ())
    )


def by_capacity(s: Setup, doors: list[Delivery]) -> list[Delivery]:
    parcels, kg = sum(v.capacity_parcels for v in s.vans), sum(v.capacity_kg for v in s.vans)
    accepted: list[Delivery] = []
    for door in doors:
        if (
            len(accepted) + 1 <= parcels
            and sum(d.weight_kg for d in accepted) + door.weight_kg <= kg
        ):
            accepted.append(door)
    return accepted


@dataclass
class Polish:
    """The background polish as the service runs it: every ``every`` accepted carts."""

    every: int
    cpu_s: float = 0.0
    runs: int = 0
    kept: int = 0


def by_live_plan(
    s: Setup, doors: list[Delivery], polish: Polish | None = None
) -> tuple[list[Delivery], live_routes.LivePlan]:
    plan, accepted = empty_plan(s), []
    for door in doors:
        placed = live_routes.fit(plan, door, s.settings)
        if not placed.fits:
            continue
        plan = live_routes.with_stop(plan, door, placed, s.settings)
        accepted.append(door)
        if polish is not None and len(accepted) % polish.every == 0:
            plan = polished(plan, s.settings, polish)
    return accepted, plan


def polished(
    plan: live_routes.LivePlan, settings: Settings, polish: Polish
) -> live_routes.LivePlan:
    cpu = time.process_time()
    routes = polishing.polished_routes(plan, settings)
    better = live_routes.merged(plan, routes)
    placed = sum(len(r.visits) for r in plan.solution.routes)
    polish.cpu_s += time.process_time() - cpu
    polish.runs += 1
    if better is None or not polishing.improves(better.solution, plan.solution, placed):
        return plan
    polish.kept += 1
    return better


def at_cutoff(
    s: Setup, accepted: list[Delivery], previous: dict[str, list[str]], limit: float
) -> tuple[Solution, float]:
    wp = planning.build_problem(s.node, s.wave, accepted, s.vans, s.settings, previous=previous)
    assert wp.problem is not None
    cpu = time.process_time()
    solution = solve(wp.problem, engine=s.settings.dispatch_engine, time_limit_s=limit)
    if previous:
        solution, _ = solved_or_live(solution, live_routes.as_solution(wp, previous))
    return solution, time.process_time() - cpu


def sequences(plan: live_routes.LivePlan) -> dict[str, list[str]]:
    return {r.vehicle: [v.stop for v in r.visits] for r in plan.solution.routes}


def outcome(accepted: list[Delivery], solution: Solution) -> dict[str, Any]:
    served = sum(len(r.visits) for r in solution.routes)
    return {
        "accepted": len(accepted),
        "kept": served,
        "moved": len(accepted) - served,
        "kept_share": round(served / len(accepted), 4) if accepted else 0.0,
        "km_per_order": round(solution.distance / 1000 / served, 3) if served else 0.0,
        "vans_used": solution.vehicles_used,
    }


def latency(s: Setup, stops: int, asks: int, seed: int) -> dict[str, float]:
    """A promise's insertion check against an open wave of ``stops`` doors (built by insertion,
    with vans enough that every door fits)."""
    big = Setup(s.settings, s.node, s.wave, setup(max(len(s.vans), stops // 8), 60).vans)
    _, plan = by_live_plan(big, demand(stops, seed, s.settings))
    doors = demand(asks, seed + 1, s.settings, prefix="ask")
    seconds = []
    for door in doors:
        started = time.perf_counter()
        live_routes.fit(plan, door, s.settings)
        seconds.append(time.perf_counter() - started)
    ms = sorted(1000 * x for x in seconds)
    return {
        "stops": sum(len(r.visits) for r in plan.solution.routes),
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(ms[min(len(ms) - 1, int(0.99 * len(ms)))], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller load, under a minute")
    parser.add_argument("--orders", type=int, default=1400)
    parser.add_argument("--vans", type=int, default=20)
    parser.add_argument("--capacity", type=int, default=80, help="parcels per van")
    parser.add_argument("--time-limit", type=float, default=10.0, help="the cutoff's solve")
    parser.add_argument("--fresh-limit", type=float, default=20.0, help="the fresh solve")
    parser.add_argument("--latency-stops", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--polish-every", type=int, default=20, help="accepted carts")
    args = parser.parse_args()
    if args.quick:
        args.orders, args.vans, args.time_limit, args.fresh_limit = 300, 5, 3.0, 5.0
        args.latency_stops = 300
    s = setup(args.vans, args.capacity)
    doors = demand(args.orders, args.seed, s.settings)

    old = by_capacity(s, doors)
    old_solution, old_cpu = at_cutoff(s, old, {}, args.time_limit)
    bare, bare_plan = by_live_plan(s, doors)
    bare_solution, bare_cpu = at_cutoff(s, bare, sequences(bare_plan), args.time_limit)
    polish = Polish(args.polish_every)
    accepted, plan = by_live_plan(s, doors, polish)
    new_solution, new_cpu = at_cutoff(s, accepted, sequences(plan), args.time_limit)
    fresh, _ = at_cutoff(s, accepted, {}, args.fresh_limit)
    gap = (new_solution.cost - fresh.cost) / fresh.cost if fresh.cost else 0.0
    asked = latency(s, args.latency_stops, 200 if not args.quick else 100, args.seed + 7)

    figures = {
        "orders": args.orders,
        "vans": args.vans,
        "capacity": outcome(old, old_solution) | {"cutoff_cpu_s": round(old_cpu, 2)},
        "insertion_only": outcome(bare, bare_solution) | {"cutoff_cpu_s": round(bare_cpu, 2)},
        "live_plan": outcome(accepted, new_solution) | {"cutoff_cpu_s": round(new_cpu, 2)},
        "polish": {
            "every_accepted": polish.every,
            "runs": polish.runs,
            "kept": polish.kept,
            "cpu_s_per_wave": round(polish.cpu_s, 2),
            "time_limit_s": s.settings.dispatch_polish_s,
        },
        "live_plan_cost_vs_fresh": round(gap, 4),
        "fresh_limit_s": args.fresh_limit,
        "promise_latency": asked,
    }
    table = Table(title=f"{args.orders} same-day carts, {args.vans} vans of {args.capacity}")
    for column in (
        "rule",
        "accepted",
        "kept",
        "moved",
        "kept share",
        "km/order",
        "vans",
        "cutoff CPU s",
    ):
        table.add_column(column, justify="right")
    for name in ("capacity", "insertion_only", "live_plan"):
        f = figures[name]
        assert isinstance(f, dict)
        table.add_row(
            name,
            str(f["accepted"]),
            str(f["kept"]),
            str(f["moved"]),
            f"{f['kept_share']:.1%}",
            f"{f['km_per_order']:.2f}",
            str(f["vans_used"]),
            f"{f['cutoff_cpu_s']:.1f}",
        )
    console.print(table)
    console.print(
        f"promise against a {asked['stops']}-stop open wave: p50 {asked['p50_ms']} ms, "
        f"p99 {asked['p99_ms']} ms; live plan at the cutoff {gap:+.2%} against a fresh "
        f"{args.fresh_limit:.0f} s solve"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
