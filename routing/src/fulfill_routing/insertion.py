"""Does a new stop fit an existing plan, where, and at what added cost?

The same-day promise at checkout asks this for every cart, so it must answer in milliseconds on
a 500-stop plan. Each gap of each route is tried at once with numpy on the route's earliest
schedule: capacity, the stop's own window, and the delay pushed onto the rest of the route,
which waiting absorbs in part and which must stay within what the later windows and the shift
allow. Distance costs are exact; where a route has a duration cost, a duration limit or a
break, candidates are confirmed and priced by rescheduling the route, best first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fulfill_routing.errors import Infeasible
from fulfill_routing.model import Route, Solution, Stop, Vehicle
from fulfill_routing.schedule import Context, IntArray, earliest, schedule_route

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
    if stop_id in ctx.roles:
        return Insertion(fits=False, reason="a pickup-and-delivery stop is placed by re-planning")
    best: tuple[int, Insertion] | None = None
    reasons: list[str] = []
    vehicles = {v.id: v for v in ctx.problem.vehicles}
    options = [_best_in_route(ctx, r, vehicles[r.vehicle], stop, reasons) for r in solution.routes]
    used = {r.vehicle for r in solution.routes}
    idle_kinds: dict[Vehicle, Vehicle] = {}  # identical idle vans give identical answers
    for vehicle in ctx.problem.vehicles:
        if vehicle.id not in used:
            idle_kinds.setdefault(vehicle.model_copy(update={"id": "_"}), vehicle)
    options += [_own_trip(ctx, v, stop, reasons) for v in idle_kinds.values()]
    for option in options:
        if option is not None and (best is None or option[0] < best[0]):
            best = option
    if best is None:
        return Insertion(fits=False, reason=reasons[0] if reasons else "the plan has no route")
    return best[1]


def _best_in_route(
    ctx: Context, route: Route, vehicle: Vehicle, stop: Stop, reasons: list[str]
) -> tuple[int, Insertion] | None:
    problem = ctx.problem
    ids = [v.stop for v in route.visits]
    carries_pairs = any(s in ctx.roles for s in ids)  # its load rises and falls: reschedule
    demand = np.asarray(problem.demand_of(stop), dtype=np.int64)
    peak = np.asarray(route.peak_load)
    if demand.size and not carries_pairs and np.any(peak + demand > np.asarray(vehicle.capacity)):
        reasons.append(f"{route.vehicle}: no capacity left")
        return None
    if vehicle.max_stops is not None and len(route.visits) >= vehicle.max_stops:
        reasons.append(f"{route.vehicle}: at its maximum of {vehicle.max_stops} stops")
        return None
    feasible, added = _gaps(ctx, vehicle, ids, stop)
    if not feasible.any():
        reasons.append(f"{route.vehicle}: no gap where {stop.id} keeps every window")
        return None
    exact = (
        route.rest is not None
        or vehicle.duration_cost > 0
        or vehicle.max_duration is not None
        or carries_pairs
    )
    if not exact:
        position = int(np.argmin(np.where(feasible, added, np.iinfo(np.int64).max)))
        cost = int(added[position])
        return cost, Insertion(True, route.vehicle, position, cost)
    best: tuple[int, Insertion] | None = None
    for gap in np.flatnonzero(feasible).tolist():  # the duration added depends on the route
        rescheduled = _rescheduled_cost(ctx, vehicle, ids, stop, gap)
        if rescheduled is not None and (best is None or rescheduled - route.cost < best[0]):
            best = (
                rescheduled - route.cost,
                Insertion(True, route.vehicle, gap, rescheduled - route.cost),
            )
    if best is not None:
        return best
    reasons.append(f"{route.vehicle}: no gap where {stop.id} keeps the shift and the break")
    return None


def _own_trip(
    ctx: Context, vehicle: Vehicle, stop: Stop, reasons: list[str]
) -> tuple[int, Insertion] | None:
    """An idle vehicle serving the stop alone (its fixed cost included)."""
    try:
        cost = schedule_route(ctx, vehicle, [stop.id]).cost
    except Infeasible as exc:
        reasons.append(f"{vehicle.id}: {exc}")
        return None
    return cost, Insertion(True, vehicle.id, 0, cost)


def _gaps(ctx: Context, vehicle: Vehicle, ids: list[str], stop: Stop) -> tuple[BoolArray, IntArray]:
    """Per gap of the route: can ``stop`` go there, and the distance cost it adds.

    Feasibility is judged on the route's earliest schedule, where every wait is still
    available to absorb the delay the new stop pushes onto the rest of the route.
    """
    t = earliest(ctx, vehicle, ids)
    stops = ctx.stops_of(ids)
    depots = {d.id: d.location for d in ctx.problem.depots}
    locations = np.array(
        [depots[vehicle.start_depot], *(s.location for s in stops), depots[vehicle.end]],
        dtype=np.int64,
    )
    departures = np.array(
        [t.depart, *(st + s.service_time for st, s in zip(t.starts, stops, strict=True))],
        dtype=np.int64,
    )
    arrivals = np.array([*t.arrivals, t.end], dtype=np.int64)
    waits = np.array([*(st - a for st, a in zip(t.starts, t.arrivals, strict=True)), 0])
    latest = np.array([*(w.end if w else 0 for w in t.windows), vehicle.shift.end])
    starts = np.array([*t.starts, t.end], dtype=np.int64)
    # How far each place's service could slip, given everything after it.
    slack = np.empty(len(starts), dtype=np.int64)
    slack[-1] = latest[-1] - starts[-1]
    for k in range(len(starts) - 2, -1, -1):
        slack[k] = min(latest[k] - starts[k], slack[k + 1] + waits[k + 1])
    before, after = locations[:-1], locations[1:]
    start, fits_window = _service_starts(stop, departures + ctx.durations[before, stop.location])
    ready_next = start + stop.service_time + ctx.durations[stop.location, after]
    push = np.maximum(0, ready_next - arrivals - waits)
    feasible = fits_window & (push <= slack)
    added = vehicle.distance_cost * (
        ctx.distances[before, stop.location]
        + ctx.distances[stop.location, after]
        - ctx.distances[before, after]
    )
    return feasible, added


def _service_starts(stop: Stop, arrival: IntArray) -> tuple[IntArray, BoolArray]:
    if not stop.time_windows:
        return arrival, np.ones(arrival.shape, dtype=bool)
    start = np.full(arrival.shape, -1, dtype=np.int64)
    for window in sorted(stop.time_windows, key=lambda w: w.start, reverse=True):
        within = arrival <= window.end
        start = np.where(within, np.maximum(arrival, window.start), start)
    return start, start >= 0


def _rescheduled_cost(
    ctx: Context, vehicle: Vehicle, ids: list[str], stop: Stop, position: int
) -> int | None:
    try:
        return schedule_route(ctx, vehicle, [*ids[:position], stop.id, *ids[position:]]).cost
    except Infeasible:
        return None
