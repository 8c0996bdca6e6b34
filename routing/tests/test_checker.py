"""The checker catches every kind of broken plan (so that it can be trusted on engines)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from routing_cases import grid_problem

from fulfill_routing.checker import check
from fulfill_routing.model import PickupDelivery, Route, Solution, TimeWindow, Unserved
from fulfill_routing.solver import matrices, solve

PROBLEM = grid_problem(8, vehicles=2, capacity=(5,))


@pytest.fixture(scope="module")
def valid() -> Solution:
    solution = solve(PROBLEM, engine="ortools", time_limit_s=0.5)
    assert check(PROBLEM, solution, *matrices(PROBLEM)) == []
    return solution


def _first_route(solution: Solution, change: Callable[[Route], Route]) -> Solution:
    routes = (change(solution.routes[0]), *solution.routes[1:])
    return solution.model_copy(update={"routes": routes})


def _visit(route: Route, k: int, **update: int) -> Route:
    visits = list(route.visits)
    visits[k] = visits[k].model_copy(update=update)
    return route.model_copy(update={"visits": tuple(visits)})


def _nudge_visit(field: str, delta: int) -> Callable[[Solution], Solution]:
    def tamper(s: Solution) -> Solution:
        return _first_route(
            s, lambda r: _visit(r, 0, **{field: getattr(r.visits[0], field) + delta})
        )

    return tamper


def _nudge_route(field: str, delta: int) -> Callable[[Solution], Solution]:
    def tamper(s: Solution) -> Solution:
        return _first_route(s, lambda r: r.model_copy(update={field: getattr(r, field) + delta}))

    return tamper


TAMPERING: dict[str, Callable[[Solution], Solution]] = {
    "arrives at": _nudge_visit("arrival", -1),
    "wait": _nudge_visit("wait", 3),
    "departure": _nudge_visit("departure", 1),
    "distance": _nudge_route("distance", -1),
    "cost": _nudge_route("cost", -1),
    "returns at": _nudge_route("end", 10**6),
    "neither visited nor listed": lambda s: _first_route(
        s, lambda r: r.model_copy(update={"visits": r.visits[1:]})
    ),
    "visited twice": lambda s: _first_route(
        s, lambda r: r.model_copy(update={"visits": (*r.visits, r.visits[0])})
    ),
    "both visited and unserved": lambda s: s.model_copy(
        update={"unserved": (Unserved(stop=s.routes[0].visits[0].stop, reason="x"),)}
    ),
}


@pytest.mark.parametrize("expected", sorted(TAMPERING))
def test_tampered_plans_are_caught(valid: Solution, expected: str) -> None:
    violations = check(PROBLEM, TAMPERING[expected](valid), *matrices(PROBLEM))
    assert any(expected in v for v in violations), violations


def test_overloads_late_service_and_broken_pairs_are_caught(valid: Solution) -> None:
    tight = PROBLEM.model_copy(
        update={
            "vehicles": tuple(v.model_copy(update={"capacity": (1,)}) for v in PROBLEM.vehicles)
        }
    )
    assert any("over" in v for v in check(tight, valid, *matrices(tight)))
    route = valid.routes[0]
    stop = next(s for s in PROBLEM.stops if s.id == route.visits[-1].stop)
    closed = stop.model_copy(update={"time_windows": (TimeWindow(start=0, end=0),)})
    narrow = PROBLEM.model_copy(
        update={"stops": tuple(closed if s.id == stop.id else s for s in PROBLEM.stops)}
    )
    assert any("outside its time windows" in v for v in check(narrow, valid, *matrices(narrow)))
    first, last = route.visits[0].stop, route.visits[-1].stop
    paired = PROBLEM.model_copy(update={"pairs": (PickupDelivery(pickup=last, delivery=first),)})
    assert any("delivery not after pickup" in v for v in check(paired, valid, *matrices(paired)))
