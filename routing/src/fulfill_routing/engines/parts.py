"""Large waves in parts: cluster the stops and plan each cluster with a few vans, then improve
the whole plan by re-planning groups of neighbouring routes together (a route-based large
neighbourhood search).

A local search over the whole of a 1,000-stop wave moves slowly; over 150 stops it converges
in a second or two. Measured on a 1,000-stop city wave with 40 vans at 30 s: OR-Tools on the
whole wave 2,223 km, in parts 1,777 km (PyVRP 1,590 km).

The engine that plans a part is given as a function, so this module knows no solver. A part is
the same problem restricted to some stops and vehicles, with the same matrices; a part's answer
replaces the routes it came from only if it is cheaper by the shared scheduler's costs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from fulfill_routing.engines import Sequences
from fulfill_routing.errors import Infeasible
from fulfill_routing.model import Problem, Stop
from fulfill_routing.schedule import Context, IntArray, schedule_route

# Plans a part until the deadline (a perf_counter time), starting from its initial routes.
PlanPart = Callable[[Context, float], Sequences]

UNSERVED_REQUIRED_COST = 10**10  # as the engines' own penalty for leaving a required stop out


@dataclass(frozen=True)
class PartsTuning:
    """Sizes and shares, measured on 1,000-stop city waves (bench/routing.py)."""

    above_stops: int = 400  # smaller problems are planned whole
    cluster_stops: int = 80  # per cluster in the first plan
    first_share: float = 0.4  # of the time, for the first plan
    part_stops: int = 150  # per group of routes re-planned together
    part_seconds: float = 1.0
    unserved_per_part: int = 20


def can_split(problem: Problem, tuning: PartsTuning) -> bool:
    """Parts cut across pairs, locked prefixes and a previous plan, so those are planned whole."""
    return (
        len(problem.stops) > tuning.above_stops
        and not problem.pairs
        and not problem.fixed_routes
        and not problem.initial_routes
    )


def plan_in_parts(
    ctx: Context, deadline: float, seed: int, plan_part: PlanPart, tuning: PartsTuning
) -> Sequences:
    rng = np.random.default_rng(seed)
    plan = _Plan(ctx)
    first_until = time.perf_counter() + (deadline - time.perf_counter()) * tuning.first_share
    _first_plan(plan, first_until, rng, plan_part, tuning)
    while time.perf_counter() < deadline - 0.05:
        _improve_one_part(plan, deadline, rng, plan_part, tuning)
    return {v: stops for v, stops in plan.routes.items() if stops}


class _Plan:
    """The routes so far, their costs by the shared scheduler, and where each route lies."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.vehicles = {v.id: v for v in ctx.problem.vehicles}
        self.routes: dict[str, list[str]] = {v: [] for v in self.vehicles}
        self.costs: dict[str, float] = dict.fromkeys(self.vehicles, 0.0)
        self.centres: dict[str, int] = {}
        self.unserved: set[str] = {s.id for s in ctx.problem.stops}

    def cost_of(self, vehicle_id: str, stop_ids: Sequence[str]) -> float:
        if not stop_ids:
            return 0.0
        try:
            return schedule_route(self.ctx, self.vehicles[vehicle_id], stop_ids).cost
        except Infeasible:
            return math.inf

    def penalty(self, stop_ids: Sequence[str]) -> float:
        stops = self.ctx.stops_of(stop_ids)
        return float(sum(UNSERVED_REQUIRED_COST if s.penalty is None else s.penalty for s in stops))

    def replace(self, routes: dict[str, list[str]], costs: dict[str, float]) -> None:
        for vehicle_id in routes:
            self.unserved |= set(self.routes[vehicle_id])
        for vehicle_id, stop_ids in routes.items():
            self.routes[vehicle_id] = stop_ids
            self.costs[vehicle_id] = costs[vehicle_id]
            self.unserved -= set(stop_ids)
            if stop_ids:
                self.centres[vehicle_id] = _medoid(self.ctx, stop_ids)
            else:
                self.centres.pop(vehicle_id, None)

    def location(self, stop_id: str) -> int:
        return self.ctx.problem.stops[self.ctx.stop_index[stop_id]].location

    def start_location(self, vehicle_id: str) -> int:
        return self.ctx.depot_location[self.vehicles[vehicle_id].start_depot]


def _first_plan(
    plan: _Plan, until: float, rng: np.random.Generator, plan_part: PlanPart, tuning: PartsTuning
) -> None:
    """Clusters of nearby stops, each planned with the vans nearest to it, in proportion."""
    stops = plan.ctx.problem.stops
    count = max(1, min(math.ceil(len(stops) / tuning.cluster_stops), len(plan.vehicles)))
    members, centres = _clusters(plan.ctx, count, rng)
    vans = _share_vans(plan, [len(m) for m in members], centres)
    for k, cluster in enumerate(members):
        if not vans[k]:
            continue  # more clusters than vans: the search below places these stops
        left = max(1, len(members) - k)
        part_until = time.perf_counter() + (until - time.perf_counter()) / left
        stop_ids = [stops[i].id for i in cluster]
        answer = plan_part(_part(plan.ctx, stop_ids, vans[k], {}), part_until)
        routes = {v: answer.get(v, []) for v in vans[k]}
        plan.replace(routes, {v: plan.cost_of(v, r) for v, r in routes.items()})


def _clusters(
    ctx: Context, count: int, rng: np.random.Generator, rounds: int = 10
) -> tuple[list[IntArray], list[int]]:
    """k-medoids by travel distance both ways: stop indices per cluster and each medoid."""
    locations = np.array([s.location for s in ctx.problem.stops])
    apart = ctx.distances[np.ix_(locations, locations)]
    apart = apart + apart.T
    medoids = rng.choice(len(locations), count, replace=False)
    for _ in range(rounds):
        nearest = np.argmin(apart[:, medoids], axis=1)
        moved = medoids.copy()
        for k in range(count):
            near = np.flatnonzero(nearest == k)
            if len(near):
                inner = apart[np.ix_(near, near)].sum(axis=1)
                moved[k] = near[int(np.argmin(inner))]
        if np.array_equal(moved, medoids):
            break
        medoids = moved
    nearest = np.argmin(apart[:, medoids], axis=1)
    members: list[IntArray] = [np.flatnonzero(nearest == k) for k in range(count)]
    return members, [int(locations[m]) for m in medoids]


def _share_vans(plan: _Plan, sizes: list[int], centres: list[int]) -> list[list[str]]:
    """Vans in proportion to the clusters' sizes (at least one each), nearest depot first."""
    free = list(plan.vehicles)
    total = sum(sizes)
    wanted = [max(1, len(free) * size // total) for size in sizes]
    shares: list[list[str]] = []
    for size, centre in sorted(zip(wanted, centres, strict=True), key=lambda x: -x[0]):
        free.sort(key=lambda v: plan.ctx.distances[plan.start_location(v), centre])
        shares.append(free[:size])
        free = free[size:]
    order = sorted(range(len(sizes)), key=lambda k: -wanted[k])
    by_cluster: list[list[str]] = [[] for _ in sizes]
    for k, share in zip(order, shares, strict=True):
        by_cluster[k] = share
    return by_cluster


def _improve_one_part(
    plan: _Plan, deadline: float, rng: np.random.Generator, plan_part: PlanPart, tuning: PartsTuning
) -> None:
    """Re-plan the routes around a random one, with an idle van and nearby unserved stops."""
    used = sorted(plan.centres)
    if not used:
        seed_location = plan.start_location(next(iter(plan.vehicles)))
        chosen: list[str] = []
    else:
        seed_location = plan.centres[used[int(rng.integers(len(used)))]]
        chosen = _nearby_routes(plan, used, seed_location, tuning.part_stops)
    idle = [v for v in plan.vehicles if not plan.routes[v]]
    if idle:
        distances = plan.ctx.distances
        chosen.append(min(idle, key=lambda v: distances[plan.start_location(v), seed_location]))
    left_out = sorted(
        plan.unserved, key=lambda s: plan.ctx.distances[seed_location, plan.location(s)]
    )[: tuning.unserved_per_part]
    stop_ids = [s for v in chosen for s in plan.routes[v]] + left_out
    if not stop_ids:
        return
    initial = {v: tuple(plan.routes[v]) for v in chosen if plan.routes[v]}
    until = min(deadline, time.perf_counter() + tuning.part_seconds)
    answer = plan_part(_part(plan.ctx, stop_ids, chosen, initial), until)
    routes = {v: answer.get(v, []) for v in chosen}
    costs = {v: plan.cost_of(v, r) for v, r in routes.items()}
    served = {s for r in routes.values() for s in r}
    before = sum(plan.costs[v] for v in chosen) + plan.penalty(left_out)
    after = sum(costs.values()) + plan.penalty([s for s in stop_ids if s not in served])
    if after < before:
        plan.replace(routes, costs)


def _nearby_routes(plan: _Plan, used: list[str], seed_location: int, size: int) -> list[str]:
    distances = plan.ctx.distances
    nearest = sorted(
        used,
        key=lambda v: (
            distances[seed_location, plan.centres[v]] + distances[plan.centres[v], seed_location]
        ),
    )
    chosen: list[str] = []
    stops = 0
    for vehicle_id in nearest:
        chosen.append(vehicle_id)
        stops += len(plan.routes[vehicle_id])
        if stops >= size:
            break
    return chosen


def _medoid(ctx: Context, stop_ids: Sequence[str]) -> int:
    locations = np.array([ctx.problem.stops[ctx.stop_index[s]].location for s in stop_ids])
    apart = ctx.distances[np.ix_(locations, locations)]
    return int(locations[int(np.argmin(apart.sum(axis=0) + apart.sum(axis=1)))])


def _part(
    ctx: Context,
    stop_ids: Sequence[str],
    vehicle_ids: Sequence[str],
    initial: dict[str, tuple[str, ...]],
) -> Context:
    problem = ctx.problem
    wanted, vans = set(stop_ids), set(vehicle_ids)
    stops: tuple[Stop, ...] = tuple(s for s in problem.stops if s.id in wanted)
    part = problem.model_copy(
        update={
            "stops": stops,
            "vehicles": tuple(v for v in problem.vehicles if v.id in vans),
            "initial_routes": initial,
        }
    )
    return Context.of(part, ctx.distances, ctx.durations)
