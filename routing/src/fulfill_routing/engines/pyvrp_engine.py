"""PyVRP (iterated local search): time windows, capacities, several depots, a mixed fleet and
optional stops with prizes. On large waves it finds shorter routes than OR-Tools in the same
time."""

from __future__ import annotations

import time
from collections import defaultdict

import pyvrp

from fulfill_routing.engines import Sequences, SolveParams
from fulfill_routing.model import Problem, Vehicle
from fulfill_routing.schedule import Context

INT_MAX = 2**62
RESULT_S = 0.05  # kept for reading the routes back


class WallClockDeadline:
    """A PyVRP stopping criterion on our own clock: ``MaxRuntime`` starts counting only after
    PyVRP's set-up, which takes longer when other engines share the machine."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def __call__(self, best_cost: float) -> bool:
        return time.perf_counter() >= self.deadline


class PyVRPEngine:
    name = "pyvrp"

    def unsupported(self, problem: Problem) -> list[str]:
        features = []
        if any(len(s.time_windows) > 1 for s in problem.stops):
            features.append("several time windows per stop")
        if problem.pairs:
            features.append("pickup-and-delivery pairs")
        if any(v.rest is not None for v in problem.vehicles):
            features.append("breaks")
        if any(v.max_stops is not None for v in problem.vehicles):
            features.append("a maximum number of stops")
        if problem.fixed_routes:
            features.append("fixed route prefixes")
        return features

    def solve(self, ctx: Context, params: SolveParams) -> Sequences:
        started = time.perf_counter()
        problem = ctx.problem
        groups = _vehicle_groups(problem)
        data = _problem_data(ctx, groups)
        deadline = started + max(0.05, params.time_limit_s - RESULT_S)
        result = pyvrp.solve(
            data, stop=WallClockDeadline(deadline), seed=params.seed, display=False
        )
        sequences: Sequences = {}
        taken: dict[int, int] = defaultdict(int)
        for route in result.best.routes():
            group = route.vehicle_type()
            vehicle = groups[group][taken[group]]
            taken[group] += 1
            sequences[vehicle.id] = [
                problem.stops[activity.idx].id for activity in route if activity.is_client()
            ]
        return sequences


def _vehicle_groups(problem: Problem) -> list[list[Vehicle]]:
    """Vehicles that differ only by id form one PyVRP vehicle type (fewer symmetric choices)."""
    groups: dict[str, list[Vehicle]] = {}
    for vehicle in problem.vehicles:
        key = vehicle.model_copy(update={"id": "_"}).model_dump_json()
        groups.setdefault(key, []).append(vehicle)
    return list(groups.values())


def _problem_data(ctx: Context, groups: list[list[Vehicle]]) -> pyvrp.ProblemData:
    problem = ctx.problem
    depots = problem.depot_index()
    locations = [pyvrp.Location(0, 0) for _ in range(ctx.distances.shape[0])]
    clients = [
        pyvrp.Client(
            location=stop.location,
            delivery=list(problem.demand_of(stop)),
            service_duration=stop.service_time,
            tw_early=stop.time_windows[0].start if stop.time_windows else 0,
            tw_late=stop.time_windows[0].end if stop.time_windows else INT_MAX,
            prize=stop.penalty or 0,
            required=stop.required,
            name=stop.id,
        )
        for stop in problem.stops
    ]
    vehicle_types = [
        pyvrp.VehicleType(
            num_available=len(group),
            capacity=list(v.capacity),
            start_depot=depots[v.start_depot],
            end_depot=depots[v.end],
            fixed_cost=v.fixed_cost,
            tw_early=v.shift.start,
            tw_late=v.shift.end,
            shift_duration=v.max_duration if v.max_duration is not None else INT_MAX,
            unit_distance_cost=v.distance_cost,
            unit_duration_cost=v.duration_cost,
            name=v.id,
        )
        for group in groups
        for v in group[:1]
    ]
    return pyvrp.ProblemData(
        locations=locations,
        clients=clients,
        depots=[pyvrp.Depot(location=d.location) for d in problem.depots],
        vehicle_types=vehicle_types,
        distance_matrices=[ctx.distances],  # type: ignore[list-item]  # pyvrp's stub is narrower
        duration_matrices=[ctx.durations],  # type: ignore[list-item]
    )
