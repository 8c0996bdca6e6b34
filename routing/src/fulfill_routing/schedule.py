"""Times, loads and costs of a route, given its sequence of stops.

Every engine reports its routes through ``schedule_route``, so all of them agree on what a
sequence means: service starts as early as its windows allow, the break is taken at the first
gap where its window is open (during waiting when it can), and the vehicle leaves its depot as
late as it can without delaying any service, so that waiting counts as little as possible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fulfill_routing.errors import Infeasible
from fulfill_routing.model import (
    Break,
    Problem,
    Route,
    RouteBreak,
    Stop,
    TimeWindow,
    Vehicle,
    Visit,
)

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Context:
    """What scheduling needs, prepared once per problem."""

    problem: Problem
    distances: IntArray
    durations: IntArray
    stop_index: dict[str, int]
    depot_location: dict[str, int]
    roles: dict[str, str]

    @classmethod
    def of(cls, problem: Problem, distances: IntArray, durations: IntArray) -> Context:
        return cls(
            problem,
            distances,
            durations,
            problem.stop_index(),
            {d.id: d.location for d in problem.depots},
            problem.paired(),
        )

    def stops_of(self, stop_ids: Sequence[str]) -> list[Stop]:
        return [self.problem.stops[self.stop_index[s]] for s in stop_ids]


def schedule_route(ctx: Context, vehicle: Vehicle, stop_ids: Sequence[str]) -> Route:
    """The route of ``vehicle`` through ``stop_ids``; raises ``Infeasible`` with the reason."""
    stops = ctx.stops_of(stop_ids)
    peak = _check_loads(ctx, vehicle, stops)
    if vehicle.max_stops is not None and len(stops) > vehicle.max_stops:
        raise Infeasible(f"{len(stops)} stops exceed the vehicle's maximum of {vehicle.max_stops}")
    timeline = _best_timeline(ctx, vehicle, stops)
    if (
        vehicle.max_duration is not None
        and stops
        and timeline.end - timeline.depart > vehicle.max_duration
    ):
        raise Infeasible(
            f"lasts {timeline.end - timeline.depart}, over the maximum of {vehicle.max_duration}"
        )
    return _route(ctx, vehicle, stops, timeline, peak)


@dataclass(frozen=True)
class Projection:
    """Times along a sequence when lateness is allowed; ``late`` is how long after the end of
    its last window each service starts (0: on time)."""

    arrivals: list[int]
    starts: list[int]
    late: list[int]
    end: int


def projected(ctx: Context, vehicle: Vehicle, stop_ids: Sequence[str], depart: int) -> Projection:
    """Where a van that leaves its start depot at ``depart`` will be, even if it runs late:
    for a plan a dispatcher forced, or a van behind schedule. Service starts on arrival or when
    a window opens; a van past every window serves on arrival and is late by the difference."""
    here = ctx.depot_location[vehicle.start_depot]
    clock = depart
    arrivals: list[int] = []
    starts: list[int] = []
    late: list[int] = []
    for stop in ctx.stops_of(stop_ids):
        arrival = clock + int(ctx.durations[here, stop.location])
        window, start = _window_for(stop, arrival)
        arrivals.append(arrival)
        starts.append(start)
        late.append(0 if window is not None else arrival - stop.time_windows[-1].end)
        clock = start + stop.service_time
        here = stop.location
    return Projection(
        arrivals, starts, late, clock + int(ctx.durations[here, ctx.depot_location[vehicle.end]])
    )


def earliest(ctx: Context, vehicle: Vehicle, stop_ids: Sequence[str]) -> Timeline:
    """The route's times when the vehicle leaves at the start of its shift (no break)."""
    return _timeline(ctx, vehicle, ctx.stops_of(stop_ids), vehicle.shift.start, None)


@dataclass
class Timeline:
    arrivals: list[int]
    starts: list[int]
    windows: list[TimeWindow | None]
    depart: int
    end: int
    rest: RouteBreak | None


def _best_timeline(ctx: Context, vehicle: Vehicle, stops: list[Stop]) -> Timeline:
    """Leave as late as no service moves; with a break, the gap that brings the van back
    earliest (trying each, waiting for the break's window where needed)."""
    if vehicle.rest is None or not stops:
        first = _timeline(ctx, vehicle, stops, vehicle.shift.start, None)
        delay = _departure_delay(stops, first)
        return _timeline(ctx, vehicle, stops, first.depart + delay, None) if delay else first
    best: Timeline | None = None
    problem = ""
    for gap in range(len(stops) + 1):
        try:
            candidate = _timeline(ctx, vehicle, stops, vehicle.shift.start, gap)
        except Infeasible as exc:
            problem = problem or str(exc)
            continue
        if best is None or candidate.end < best.end:
            best = candidate
    if best is None:
        raise Infeasible(problem)
    return best


def _timeline(
    ctx: Context, vehicle: Vehicle, stops: list[Stop], depart: int, break_gap: int | None
) -> Timeline:
    """Times from leaving at ``depart``; the break (if any) is taken in gap ``break_gap``
    (before visit ``break_gap``, or before returning when it equals the number of stops)."""
    durations = ctx.durations
    here = ctx.depot_location[vehicle.start_depot]
    clock = depart
    taken: RouteBreak | None = None
    arrivals: list[int] = []
    starts: list[int] = []
    windows: list[TimeWindow | None] = []
    for k, stop in enumerate(stops):
        arrival = clock + int(durations[here, stop.location])
        ready = arrival
        if break_gap == k:
            assert vehicle.rest is not None
            taken, ready = _take_break(vehicle.rest, clock, arrival, k)
        window, start = _window_for(stop, ready)
        if window is None:
            raise Infeasible(f"stop {stop.id}: arrives at {ready}, after its last time window")
        arrivals.append(arrival)
        starts.append(start)
        windows.append(window)
        clock = start + stop.service_time
        here = stop.location
    end = clock + int(durations[here, ctx.depot_location[vehicle.end]])
    if break_gap == len(stops):
        assert vehicle.rest is not None
        taken, end = _take_break(vehicle.rest, clock, end, len(stops))
    if end > vehicle.shift.end:
        raise Infeasible(f"returns at {end}, after the shift ends at {vehicle.shift.end}")
    return Timeline(arrivals, starts, windows, depart, end, taken)


def _take_break(rest: Break, depart: int, arrival: int, after: int) -> tuple[RouteBreak, int]:
    """Take the break in the gap between ``depart`` and ``arrival``; return it and when the
    vehicle is ready at the far end. Taken on arrival (during waiting) when the window allows,
    otherwise before travelling (waiting for the window to open if needed)."""
    window = rest.window
    on_arrival = max(arrival, window.start)
    if on_arrival <= window.end:
        return RouteBreak(start=on_arrival, duration=rest.duration, after=after), (
            on_arrival + rest.duration
        )
    before = max(depart, window.start)
    if before <= window.end:
        travel = arrival - depart
        return RouteBreak(start=before, duration=rest.duration, after=after), (
            before + rest.duration + travel
        )
    raise Infeasible(f"the break cannot start within {window.start}-{window.end}")


def _window_for(stop: Stop, ready: int) -> tuple[TimeWindow | None, int]:
    if not stop.time_windows:
        return TimeWindow(start=0, end=2**62), ready
    for window in stop.time_windows:
        if ready <= window.end:
            return window, max(ready, window.start)
    return None, ready


def _departure_delay(stops: list[Stop], t: Timeline) -> int:
    """How much later the vehicle can leave without breaking a window or ending later: the
    forward time slack, capped by the total wait (beyond it the end moves too)."""
    waited = 0
    room = 2**62
    for k in range(len(stops)):
        waited += t.starts[k] - t.arrivals[k]
        window = t.windows[k]
        assert window is not None
        room = min(room, waited + window.end - t.starts[k])
    return max(0, min(room, waited))


def _check_loads(ctx: Context, vehicle: Vehicle, stops: list[Stop]) -> tuple[int, ...]:
    dims = ctx.problem.dimensions
    if not dims:
        return ()
    load = np.zeros(dims, dtype=np.int64)
    deltas = []
    for stop in stops:
        demand = np.asarray(ctx.problem.demand_of(stop), dtype=np.int64)
        role = ctx.roles.get(stop.id)
        if role is None:
            load += demand  # delivered from the depot: on board from the start
            deltas.append(-demand)
        else:
            deltas.append(demand if role == "pickup" else -demand)
    capacity = np.asarray(vehicle.capacity, dtype=np.int64)
    peak = load.copy()
    if np.any(load > capacity):
        raise Infeasible(f"loads {load.tolist()} at the depot, over capacity {capacity.tolist()}")
    for stop, delta in zip(stops, deltas, strict=True):
        load = load + delta
        if np.any(load > capacity):
            raise Infeasible(f"load {load.tolist()} after {stop.id} exceeds {capacity.tolist()}")
        if np.any(load < 0):
            raise Infeasible(f"stop {stop.id} unloads goods that are not on board")
        peak = np.maximum(peak, load)
    return tuple(int(x) for x in peak)


def _route(
    ctx: Context, vehicle: Vehicle, stops: list[Stop], t: Timeline, peak: tuple[int, ...]
) -> Route:
    here = ctx.depot_location[vehicle.start_depot]
    distance = 0
    for stop in stops:
        distance += int(ctx.distances[here, stop.location])
        here = stop.location
    distance += int(ctx.distances[here, ctx.depot_location[vehicle.end]])
    slack = _slacks(vehicle, stops, t)
    visits = tuple(
        Visit(
            stop=stop.id,
            arrival=t.arrivals[k],
            start=t.starts[k],
            departure=t.starts[k] + stop.service_time,
            wait=t.starts[k] - t.arrivals[k],
            slack=slack[k],
        )
        for k, stop in enumerate(stops)
    )
    duration = t.end - t.depart
    cost = vehicle.distance_cost * distance + vehicle.duration_cost * duration
    if stops:
        cost += vehicle.fixed_cost
    return Route(
        vehicle=vehicle.id,
        visits=visits,
        start=t.depart,
        end=t.end,
        distance=distance,
        duration=duration,
        cost=cost,
        peak_load=peak,
        rest=t.rest,
    )


def _slacks(vehicle: Vehicle, stops: list[Stop], t: Timeline) -> list[int]:
    """Per visit, how much later its service could start without breaking anything after."""
    slack = [0] * len(stops)
    following = vehicle.shift.end - t.end
    for k in range(len(stops) - 1, -1, -1):
        window = t.windows[k]
        assert window is not None
        own = window.end - t.starts[k]
        slack[k] = max(0, min(own, following))
        following = slack[k] + (t.starts[k] - t.arrivals[k])
    return slack
