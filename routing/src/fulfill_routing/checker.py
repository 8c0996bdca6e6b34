"""An independent check of a solution against its problem.

It re-derives every constraint from the problem and the reported routes, sharing no code with
the engines or the scheduler: travel times, windows, waits, breaks, shifts, loads, stop limits,
pairs, fixed prefixes, coverage, and every reported total. Tests and benchmarks run it on every
solution they get.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

from fulfill_routing.errors import InvalidSolution
from fulfill_routing.model import Problem, Route, RouteBreak, Solution, Vehicle

IntArray = npt.NDArray[np.int64]


def check(
    problem: Problem, solution: Solution, distances: IntArray, durations: IntArray
) -> list[str]:
    """Every violation found, as sentences; an empty list means the solution is valid."""
    return list(_violations(problem, solution, distances, durations))


def assert_valid(
    problem: Problem, solution: Solution, distances: IntArray, durations: IntArray
) -> None:
    violations = check(problem, solution, distances, durations)
    if violations:
        raise InvalidSolution(violations)


def _violations(
    problem: Problem, solution: Solution, distances: IntArray, durations: IntArray
) -> Iterator[str]:
    stops = {s.id: s for s in problem.stops}
    vehicles = {v.id: v for v in problem.vehicles}
    visited: dict[str, str] = {}
    route_total = 0
    for route in solution.routes:
        if route.vehicle not in vehicles:
            yield f"route of unknown vehicle {route.vehicle}"
            continue
        if sum(r.vehicle == route.vehicle for r in solution.routes) > 1:
            yield f"vehicle {route.vehicle} has more than one route"
        for visit in route.visits:
            if visit.stop not in stops:
                yield f"{route.vehicle} visits unknown stop {visit.stop}"
            elif visit.stop in visited:
                yield f"stop {visit.stop} is visited twice"
            visited[visit.stop] = route.vehicle
        yield from _route_violations(problem, route, distances, durations)
        route_total += route.cost
    yield from _coverage(problem, solution, visited)
    yield from _pairs(problem, solution)
    yield from _fixed_prefixes(problem, solution)
    penalties = sum(stops[u.stop].penalty or 0 for u in solution.unserved if u.stop in stops)
    if solution.cost != route_total + penalties:
        yield f"solution cost {solution.cost} != routes {route_total} + penalties {penalties}"
    if solution.distance != sum(r.distance for r in solution.routes):
        yield f"solution distance {solution.distance} != the sum of its routes"


def _route_violations(
    problem: Problem, route: Route, distances: IntArray, durations: IntArray
) -> Iterator[str]:
    vehicle = next(v for v in problem.vehicles if v.id == route.vehicle)
    stops = {s.id: s for s in problem.stops}
    depots = {d.id: d.location for d in problem.depots}
    name = f"route {route.vehicle}"
    if not route.visits:
        return
    yield from _limits(name, vehicle, route)
    rest = route.rest
    here, clock, distance = depots[vehicle.start_depot], route.start, 0
    locations = [stops[v.stop].location for v in route.visits if v.stop in stops]
    if len(locations) != len(route.visits):
        return
    for k, visit in enumerate(route.visits):
        stop = stops[visit.stop]
        travel = int(durations[here, stop.location])
        distance += int(distances[here, stop.location])
        yield from _gap(name, k, clock, travel, visit.arrival, visit.start, rest)
        if visit.wait != visit.start - visit.arrival or visit.wait < 0:
            yield f"{name} {visit.stop}: wait {visit.wait} does not match its times"
        windows = stop.time_windows
        if windows and not any(w.start <= visit.start <= w.end for w in windows):
            yield f"{name} {visit.stop}: service at {visit.start} is outside its time windows"
        if visit.departure != visit.start + stop.service_time:
            yield f"{name} {visit.stop}: departure {visit.departure} != start + service time"
        here, clock = stop.location, visit.departure
    end = depots[vehicle.end]
    distance += int(distances[here, end])
    yield from _gap(
        name, len(route.visits), clock, int(durations[here, end]), route.end, route.end, rest
    )
    if distance != route.distance:
        yield f"{name} distance {route.distance} != {distance} from the matrix"
    if route.duration != route.end - route.start:
        yield f"{name} duration {route.duration} != end - start"
    cost = vehicle.fixed_cost + vehicle.distance_cost * distance
    cost += vehicle.duration_cost * (route.end - route.start)
    if route.cost != cost:
        yield f"{name} cost {route.cost} != {cost} recomputed"
    yield from _loads(problem, route)


def _limits(name: str, vehicle: Vehicle, route: Route) -> Iterator[str]:
    if route.start < vehicle.shift.start:
        yield f"{name} leaves at {route.start}, before the shift starts"
    if route.end > vehicle.shift.end:
        yield f"{name} returns at {route.end}, after the shift ends"
    if vehicle.max_stops is not None and len(route.visits) > vehicle.max_stops:
        yield f"{name} has {len(route.visits)} stops, over {vehicle.max_stops}"
    if vehicle.max_duration is not None and route.end - route.start > vehicle.max_duration:
        yield f"{name} lasts {route.end - route.start}, over {vehicle.max_duration}"
    rest = route.rest
    if vehicle.rest is None:
        return
    if rest is None:
        yield f"{name} takes no break"
    elif not 0 <= rest.after <= len(route.visits):
        yield f"{name} break is placed after visit {rest.after}, outside the route"
    elif not vehicle.rest.window.start <= rest.start <= vehicle.rest.window.end:
        yield f"{name} break starts at {rest.start}, outside its window"
    elif rest.duration < vehicle.rest.duration:
        yield f"{name} break is {rest.duration} long, under {vehicle.rest.duration}"


def _gap(
    name: str, k: int, depart: int, travel: int, arrival: int, ready: int, rest: RouteBreak | None
) -> Iterator[str]:
    """The time between leaving one place and arriving (or being ready) at the next."""
    if rest is None or rest.after != k:
        if arrival != depart + travel:
            yield f"{name} arrives at #{k} at {arrival}, expected {depart + travel}"
        return
    if arrival < depart + travel:
        yield f"{name} arrives at #{k} at {arrival}, faster than travel allows"
    if rest.start < depart or rest.start + rest.duration > ready:
        yield f"{name} break overlaps driving or service around #{k}"
    if ready < depart + travel + rest.duration:
        yield f"{name} gap before #{k} is too short for travel and the break"


def _loads(problem: Problem, route: Route) -> Iterator[str]:
    if not problem.dimensions:
        return
    vehicle = next(v for v in problem.vehicles if v.id == route.vehicle)
    pickups = {p.pickup for p in problem.pairs}
    deliveries = {p.delivery for p in problem.pairs}
    demand = {s.id: np.asarray(problem.demand_of(s), dtype=np.int64) for s in problem.stops}
    load = sum(
        (demand[v.stop] for v in route.visits if v.stop not in pickups | deliveries),
        np.zeros(problem.dimensions, dtype=np.int64),
    )
    capacity = np.asarray(vehicle.capacity, dtype=np.int64)
    if np.any(load > capacity):
        yield f"route {route.vehicle} leaves loaded {load.tolist()}, over {capacity.tolist()}"
    for visit in route.visits:
        sign = 1 if visit.stop in pickups else -1
        load = load + sign * demand[visit.stop]
        if np.any(load > capacity) or np.any(load < 0):
            yield f"route {route.vehicle} load {load.tolist()} after {visit.stop} is impossible"


def _coverage(problem: Problem, solution: Solution, visited: dict[str, str]) -> Iterator[str]:
    unserved = [u.stop for u in solution.unserved]
    if len(set(unserved)) != len(unserved):
        yield "a stop is listed as unserved twice"
    for stop in problem.stops:
        if stop.id in visited and stop.id in unserved:
            yield f"stop {stop.id} is both visited and unserved"
        elif stop.id not in visited and stop.id not in unserved:
            yield f"stop {stop.id} is neither visited nor listed as unserved"
        elif stop.id not in visited and stop.required and solution.feasible:
            yield f"required stop {stop.id} is unserved in a solution called feasible"


def _pairs(problem: Problem, solution: Solution) -> Iterator[str]:
    position = {v.stop: (r.vehicle, k) for r in solution.routes for k, v in enumerate(r.visits)}
    for pair in problem.pairs:
        p, d = position.get(pair.pickup), position.get(pair.delivery)
        if (p is None) != (d is None):
            yield f"pair {pair.pickup}->{pair.delivery} is half served"
        elif p is not None and d is not None and (p[0] != d[0] or p[1] > d[1]):
            yield f"pair {pair.pickup}->{pair.delivery}: delivery not after pickup on one route"


def _fixed_prefixes(problem: Problem, solution: Solution) -> Iterator[str]:
    routes = {r.vehicle: [v.stop for v in r.visits] for r in solution.routes}
    for vehicle, prefix in problem.fixed_routes.items():
        if tuple(routes.get(vehicle, [])[: len(prefix)]) != prefix:
            yield f"route {vehicle} does not start with its fixed stops {list(prefix)}"
