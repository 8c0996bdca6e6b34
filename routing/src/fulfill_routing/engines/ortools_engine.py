"""OR-Tools routing: the complete engine. Capacities in several dimensions, time windows (one or
several per stop), shifts, route duration limits, stop limits, optional stops with penalties,
pickup-and-delivery pairs, breaks, fixed route prefixes, and warm start from a previous plan,
searched with guided local search; large waves are planned in parts (``engines.parts``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from fulfill_routing.engines import Sequences, SolveParams
from fulfill_routing.engines.parts import PartsTuning, can_split, plan_in_parts
from fulfill_routing.model import Problem
from fulfill_routing.schedule import Context

# A required stop left out costs this much: the search always returns a plan (reported as
# infeasible) instead of nothing, yet never leaves a required stop out to save travel.
REQUIRED_PENALTY = 10**10
SAFETY_S = 0.3  # of the limit, kept for reading the answer back


@dataclass(frozen=True)
class ORToolsTuning:
    """Search settings. Measured (bench/routing.py and 1,000-stop city waves at 10 s): sparse
    neighbourhoods (``ls_operator_neighbors_ratio``) stalled guided local search at 100 and at
    1,000 stops, so they are off unless ``neighbours`` is set; on large waves SAVINGS gives the
    best start (12 % shorter than parallel cheapest insertion after 10 s at 1,000 stops)."""

    first_solution: str = "PARALLEL_CHEAPEST_INSERTION"
    first_solution_large: str = "SAVINGS"
    large_above: int = 400  # nodes
    metaheuristic: str = "GUIDED_LOCAL_SEARCH"
    gls_lambda: float = 0.1
    neighbours: int | None = None  # nearest nodes the operators consider; None: all
    parts: PartsTuning = field(default_factory=PartsTuning)


class ORToolsEngine:
    name = "ortools"

    def __init__(self, tuning: ORToolsTuning | None = None) -> None:
        self.tuning = tuning or ORToolsTuning()

    def unsupported(self, problem: Problem) -> list[str]:
        return []

    def solve(self, ctx: Context, params: SolveParams) -> Sequences:
        deadline = time.perf_counter() + params.time_limit_s - SAFETY_S
        if can_split(ctx.problem, self.tuning.parts):
            return plan_in_parts(ctx, deadline, params.seed, self._solve_until, self.tuning.parts)
        return self._solve_until(ctx, deadline)

    def _solve_until(self, ctx: Context, deadline: float) -> Sequences:
        """The whole of ``ctx``'s problem, from its initial routes if it has some."""
        model = _Model(ctx)
        search = self._search_parameters(model, deadline - time.perf_counter())
        model.routing.CloseModelWithParameters(search)
        model.lock_prefixes()
        initial = model.initial_assignment()
        if initial is not None:
            solution = model.routing.SolveFromAssignmentWithParameters(initial, search)
        else:
            solution = model.routing.SolveWithParameters(search)
        return model.sequences(solution) if solution is not None else {}

    def _search_parameters(self, model: _Model, seconds: float) -> Any:
        search = pywrapcp.DefaultRoutingSearchParameters()
        nodes = model.manager.GetNumberOfNodes()
        strategies = routing_enums_pb2.FirstSolutionStrategy
        large = nodes > self.tuning.large_above
        first = self.tuning.first_solution_large if large else self.tuning.first_solution
        search.first_solution_strategy = getattr(strategies, first)
        metaheuristics = routing_enums_pb2.LocalSearchMetaheuristic
        search.local_search_metaheuristic = getattr(metaheuristics, self.tuning.metaheuristic)
        search.guided_local_search_lambda_coefficient = self.tuning.gls_lambda
        if self.tuning.neighbours is not None and nodes > self.tuning.neighbours:
            search.ls_operator_neighbors_ratio = self.tuning.neighbours / nodes
            search.ls_operator_min_neighbors = self.tuning.neighbours
        search.time_limit.FromMilliseconds(int(max(0.05, seconds) * 1000))
        return search


class _Model:
    """The routing model of one problem: nodes are the depots, then the stops."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        problem = ctx.problem
        self.problem = problem
        depots = problem.depot_index()
        n_depots = len(problem.depots)
        self.node_location = np.array(
            [d.location for d in problem.depots] + [s.location for s in problem.stops],
            dtype=np.int64,
        )
        self.stop_node = {s.id: n_depots + i for i, s in enumerate(problem.stops)}
        starts = [depots[v.start_depot] for v in problem.vehicles]
        ends = [depots[v.end] for v in problem.vehicles]
        self.manager = pywrapcp.RoutingIndexManager(
            len(self.node_location), len(starts), starts, ends
        )
        self.routing = pywrapcp.RoutingModel(self.manager)
        self.service = np.zeros(len(self.node_location), dtype=np.int64)
        self.service[n_depots:] = [s.service_time for s in problem.stops]
        self._arc_costs()
        self.time = self._time_dimension()
        self._capacities()
        self._stop_limits()
        self._optional_stops()
        self._pairs()
        self._breaks()

    def index(self, stop_id: str) -> int:
        return int(self.manager.NodeToIndex(self.stop_node[stop_id]))

    def _node_matrix(self, matrix: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return matrix[np.ix_(self.node_location, self.node_location)]

    def _arc_costs(self) -> None:
        distances = self._node_matrix(self.ctx.distances)
        by_rate: dict[int, int] = {}
        for v, vehicle in enumerate(self.problem.vehicles):
            rate = vehicle.distance_cost
            if rate not in by_rate:
                by_rate[rate] = self.routing.RegisterTransitMatrix((distances * rate).tolist())
            self.routing.SetArcCostEvaluatorOfVehicle(by_rate[rate], v)
            self.routing.SetFixedCostOfVehicle(vehicle.fixed_cost, v)

    def _time_dimension(self) -> Any:
        travel = self._node_matrix(self.ctx.durations) + self.service[:, None]
        callback = self.routing.RegisterTransitMatrix(travel.tolist())
        horizon = max(v.shift.end for v in self.problem.vehicles)
        self.routing.AddDimension(callback, horizon, horizon, False, "time")
        dimension = self.routing.GetDimensionOrDie("time")
        for v, vehicle in enumerate(self.problem.vehicles):
            for index in (self.routing.Start(v), self.routing.End(v)):
                dimension.CumulVar(index).SetRange(vehicle.shift.start, vehicle.shift.end)
            if vehicle.duration_cost:
                dimension.SetSpanCostCoefficientForVehicle(vehicle.duration_cost, v)
            if vehicle.max_duration is not None:
                dimension.SetSpanUpperBoundForVehicle(vehicle.max_duration, v)
            self.routing.AddVariableMaximizedByFinalizer(dimension.CumulVar(self.routing.Start(v)))
        for stop in self.problem.stops:
            windows = sorted(stop.time_windows, key=lambda w: w.start)
            if not windows:
                continue
            cumul = dimension.CumulVar(self.index(stop.id))
            cumul.SetRange(windows[0].start, windows[-1].end)
            for before, after in pairwise(windows):
                if after.start > before.end + 1:
                    cumul.RemoveInterval(before.end + 1, after.start - 1)
            self.routing.AddVariableMinimizedByFinalizer(cumul)
        return dimension

    def _capacities(self) -> None:
        roles = self.ctx.roles
        n_depots = len(self.problem.depots)
        for d in range(self.problem.dimensions):
            demand = [0] * n_depots
            for stop in self.problem.stops:
                amount = self.problem.demand_of(stop)[d]
                role = roles.get(stop.id)
                if not self.problem.pairs:
                    demand.append(amount)  # everything leaves the depot: count what was dropped
                else:
                    demand.append(amount if role == "pickup" else -amount)
            callback = self.routing.RegisterUnaryTransitVector(demand)
            capacities = [v.capacity[d] for v in self.problem.vehicles]
            fixed_start = not self.problem.pairs
            self.routing.AddDimensionWithVehicleCapacity(
                callback, 0, capacities, fixed_start, f"load{d}"
            )
            if self.problem.pairs:
                # Net formulation: the load leaves the depot and ends at zero, never below.
                dimension = self.routing.GetDimensionOrDie(f"load{d}")
                for v in range(len(self.problem.vehicles)):
                    dimension.CumulVar(self.routing.End(v)).SetValue(0)

    def _stop_limits(self) -> None:
        if all(v.max_stops is None for v in self.problem.vehicles):
            return
        count = [0] * len(self.problem.depots) + [1] * len(self.problem.stops)
        callback = self.routing.RegisterUnaryTransitVector(count)
        limits = [v.max_stops or len(self.problem.stops) for v in self.problem.vehicles]
        self.routing.AddDimensionWithVehicleCapacity(callback, 0, limits, True, "stops")

    def _optional_stops(self) -> None:
        for stop in self.problem.stops:
            penalty = REQUIRED_PENALTY if stop.required else stop.penalty
            self.routing.AddDisjunction([self.index(stop.id)], int(penalty or 0))

    def _pairs(self) -> None:
        solver = self.routing.solver()
        for pair in self.problem.pairs:
            pickup, delivery = self.index(pair.pickup), self.index(pair.delivery)
            self.routing.AddPickupAndDelivery(pickup, delivery)
            solver.Add(self.routing.VehicleVar(pickup) == self.routing.VehicleVar(delivery))
            solver.Add(self.time.CumulVar(pickup) <= self.time.CumulVar(delivery))

    def _breaks(self) -> None:
        solver = self.routing.solver()
        visit_transits = [
            int(self.service[self.manager.IndexToNode(i)]) for i in range(self.routing.Size())
        ]
        for v, vehicle in enumerate(self.problem.vehicles):
            if vehicle.rest is None:
                continue
            rest = vehicle.rest
            interval = solver.FixedDurationIntervalVar(
                rest.window.start, rest.window.end, rest.duration, False, f"break{v}"
            )
            self.time.SetBreakIntervalsOfVehicle([interval], v, visit_transits)
            # OR-Tools may place a break before the start or after the end of a route; ours are
            # taken on the road. An unused vehicle waits at its depot, so this binds it too.
            solver.Add(interval.StartExpr() >= self.time.CumulVar(self.routing.Start(v)))
            solver.Add(interval.EndExpr() <= self.time.CumulVar(self.routing.End(v)))

    def lock_prefixes(self) -> None:
        """Stops driven or locked by a dispatcher come first on their vehicle, in order."""
        vehicles = {v.id: i for i, v in enumerate(self.problem.vehicles)}
        for vehicle_id, stop_ids in self.problem.fixed_routes.items():
            v = vehicles[vehicle_id]
            previous = self.routing.Start(v)
            for stop_id in stop_ids:
                index = self.index(stop_id)
                self.routing.NextVar(previous).SetValue(index)
                self.routing.VehicleVar(index).SetValue(v)
                previous = index

    def initial_assignment(self) -> Any:
        """The previous plan to start from (fixed prefixes first), if one was given."""
        if not self.problem.initial_routes:
            return None
        routes = []
        for vehicle in self.problem.vehicles:
            prefix = list(self.problem.fixed_routes.get(vehicle.id, ()))
            rest = [s for s in self.problem.initial_routes.get(vehicle.id, ()) if s not in prefix]
            routes.append([self.index(s) for s in prefix + rest])
        return self.routing.ReadAssignmentFromRoutes(routes, True)

    def sequences(self, solution: Any) -> Sequences:
        result: Sequences = {}
        for v, vehicle in enumerate(self.problem.vehicles):
            index = solution.Value(self.routing.NextVar(self.routing.Start(v)))
            stops = []
            while not self.routing.IsEnd(index):
                node = self.manager.IndexToNode(index)
                stops.append(self.problem.stops[node - len(self.problem.depots)].id)
                index = solution.Value(self.routing.NextVar(index))
            if stops:
                result[vehicle.id] = stops
        return result
