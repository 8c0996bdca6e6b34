"""Does a new stop fit an existing plan, where, and at what added cost?

The same-day promise at checkout asks this for every cart, so it must answer in milliseconds on
a 500-stop plan. Each gap of each route is tried at once with numpy: capacity on the route, the
stop's own window, and the delay pushed onto the rest of the route, which must not exceed the
slack of the next visit (waiting absorbs part of it). The answer is exact for routes without a
break; routes with a break are confirmed by rescheduling them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fulfill_routing.model import Route, Solution, Stop, Vehicle
from fulfill_routing.schedule import Context, Infeasible, IntArray, schedule_route

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Insertion:
    fits: bool
    vehicle: str | None = None
    position: int | None = None  # index in the route's visits where the stop would go
    added_cost: int | None = None
    reason: str = ""


def best_insertion(ctx: Context, solution: Solution, stop_id: str) -> Insertion:
    """The cheapest feasible place in ``solution`` for the stop ``stop_id`` of ``ctx.problem``
    (a stop the plan does not serve yet)."""
    stop = ctx.problem.stops[ctx.stop_index[stop_id]]
    best: tuple[int, Insertion] | None = None
    reasons: list[str] = []
    vehicles = {v.id: v for v in ctx.problem.vehicles}
    for route in solution.routes:
        option = _best_in_route(ctx, route, vehicles[route.vehicle], stop, reasons)
        if option is not None and (best is None or option[0] < best[0]):
            best = option
    if best is None:
        return Insertion(fits=False, reason=reasons[0] if reasons else "the plan has no route")
    return best[1]


def _best_in_route(
    ctx: Context, route: Route, vehicle: Vehicle, stop: Stop, reasons: list[str]
) -> tuple[int, Insertion] | None:
    problem = ctx.problem
    depots = {d.id: d.location for d in problem.depots}
    visits = route.visits
    stops = [problem.stops[ctx.stop_index[v.stop]] for v in visits]
    locations = np.array(
        [depots[vehicle.start_depot], *(s.location for s in stops), depots[vehicle.end]],
        dtype=np.int64,
    )
    departures = np.array([route.start, *(v.departure for v in visits)], dtype=np.int64)
    # The next place of each gap: its arrival, wait and slack (the end depot has no wait).
    next_arrival = np.array([*(v.arrival for v in visits), route.end], dtype=np.int64)
    next_wait = np.array([*(v.wait for v in visits), 0], dtype=np.int64)
    next_slack = np.array(
        [*(v.slack for v in visits), vehicle.shift.end - route.end], dtype=np.int64
    )
    demand = np.asarray(problem.demand_of(stop), dtype=np.int64)
    if demand.size and np.any(np.asarray(route.peak_load) + demand > np.asarray(vehicle.capacity)):
        reasons.append(f"{route.vehicle}: no capacity left")
        return None
    if vehicle.max_stops is not None and len(visits) >= vehicle.max_stops:
        reasons.append(f"{route.vehicle}: at its maximum of {vehicle.max_stops} stops")
        return None
    before, after = locations[:-1], locations[1:]
    to_new = ctx.durations[before, stop.location]
    from_new = ctx.durations[stop.location, after]
    arrival = departures + to_new
    start, fits_window = _service_starts(stop, arrival)
    leave = start + stop.service_time
    push = np.maximum(0, leave + from_new - next_arrival - next_wait)
    feasible = fits_window & (push <= next_slack)
    if vehicle.max_duration is not None:
        feasible &= route.duration + push <= vehicle.max_duration
    if not feasible.any():
        reasons.append(f"{route.vehicle}: no gap where {stop.id} keeps every window")
        return None
    added = (
        vehicle.distance_cost
        * (
            ctx.distances[before, stop.location]
            + ctx.distances[stop.location, after]
            - ctx.distances[before, after]
        )
        + vehicle.duration_cost * push
    )
    added = np.where(feasible, added, np.iinfo(np.int64).max)
    for position in np.argsort(added, kind="stable"):
        if not feasible[position]:
            break
        if route.rest is None or _reschedules(ctx, vehicle, route, stop, int(position)):
            cost = int(added[position])
            return cost, Insertion(True, route.vehicle, int(position), cost)
    reasons.append(f"{route.vehicle}: the break leaves no room for {stop.id}")
    return None


def _service_starts(stop: Stop, arrival: IntArray) -> tuple[IntArray, BoolArray]:
    if not stop.time_windows:
        return arrival, np.ones(arrival.shape, dtype=bool)
    start = np.full(arrival.shape, -1, dtype=np.int64)
    for window in sorted(stop.time_windows, key=lambda w: w.start, reverse=True):
        within = arrival <= window.end
        start = np.where(within, np.maximum(arrival, window.start), start)
    return start, start >= 0


def _reschedules(ctx: Context, vehicle: Vehicle, route: Route, stop: Stop, position: int) -> bool:
    ids = [v.stop for v in route.visits]
    ids.insert(position, stop.id)
    try:
        schedule_route(ctx, vehicle, ids)
    except Infeasible:
        return False
    return True
