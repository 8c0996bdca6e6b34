"""What a sequence of stops means in time: the scheduler every engine reports through."""

from __future__ import annotations

import numpy as np

from fulfill_routing.checker import check
from fulfill_routing.model import (
    Break,
    Depot,
    Matrix,
    Problem,
    Solution,
    Stop,
    TimeWindow,
    Vehicle,
)
from fulfill_routing.schedule import Context, schedule_route
from fulfill_routing.solver import build_solution, unreachable


def line_problem(stops: tuple[Stop, ...], vehicle: Vehicle, matrix: list[list[int]]) -> Problem:
    m = np.array(matrix)
    return Problem(
        depots=(Depot(id="d", location=0),),
        vehicles=(vehicle,),
        stops=stops,
        matrix=Matrix(distances=m, durations=m),
    )


def valid(problem: Problem, sequence: list[str]) -> Solution:
    assert problem.matrix is not None
    ctx = Context.of(problem, problem.matrix.distances, problem.matrix.durations)
    solution = build_solution(ctx, {problem.vehicles[0].id: sequence}, "test", 0.0)
    assert check(problem, solution, ctx.distances, ctx.durations) == []
    return solution


def test_the_break_waits_for_a_later_gap_when_an_early_one_breaks_a_window() -> None:
    rest = Break(window=TimeWindow(start=0, end=300), duration=30)
    van = Vehicle(id="v", start_depot="d", shift=TimeWindow(start=0, end=1000), rest=rest)
    stop = Stop(id="a", location=1, time_windows=(TimeWindow(start=10, end=15),))
    route = valid(line_problem((stop,), van, [[0, 10], [10, 0]]), ["a"]).routes[0]
    assert route.visits[0].start == 10
    assert route.rest is not None and route.rest.after == 1


def test_a_long_route_leaves_late_enough_to_keep_its_maximum_duration() -> None:
    van = Vehicle(id="v", start_depot="d", shift=TimeWindow(start=0, end=1000), max_duration=100)
    stops = (
        Stop(id="a", location=1),
        Stop(id="b", location=2, time_windows=(TimeWindow(start=500, end=600),)),
    )
    problem = line_problem(stops, van, [[0, 10, 10], [10, 0, 10], [10, 10, 0]])
    route = valid(problem, ["a", "b"]).routes[0]
    assert route.start == 480 and route.duration == 30
    assert [v.wait for v in route.visits] == [0, 0]


def test_several_windows_are_read_in_time_order_and_merged() -> None:
    stop = Stop(
        id="a",
        location=1,
        time_windows=(
            TimeWindow(start=200, end=300),
            TimeWindow(start=0, end=100),
            TimeWindow(start=90, end=120),
        ),
    )
    assert [(w.start, w.end) for w in stop.time_windows] == [(0, 120), (200, 300)]


def test_a_stop_reachable_only_through_another_is_not_called_unreachable() -> None:
    van = Vehicle(id="v", start_depot="d", shift=TimeWindow(start=0, end=1000))
    soon = (TimeWindow(start=0, end=50),)
    stops = (Stop(id="a", location=1), Stop(id="s", location=2, time_windows=soon))
    problem = line_problem(stops, van, [[0, 10, 100], [10, 0, 10], [100, 10, 0]])
    assert problem.matrix is not None
    ctx = Context.of(problem, problem.matrix.distances, problem.matrix.durations)
    assert unreachable(ctx) == set()
    assert schedule_route(ctx, van, ["a", "s"]).visits[1].start == 20


def test_the_checker_refuses_a_break_placed_outside_the_route() -> None:
    rest = Break(window=TimeWindow(start=0, end=300), duration=30)
    van = Vehicle(id="v", start_depot="d", shift=TimeWindow(start=0, end=1000), rest=rest)
    problem = line_problem((Stop(id="a", location=1),), van, [[0, 10], [10, 0]])
    solution = valid(problem, ["a"])
    route = solution.routes[0]
    assert route.rest is not None
    moved = route.model_copy(update={"rest": route.rest.model_copy(update={"after": 7})})
    broken = solution.model_copy(update={"routes": (moved,)})
    assert problem.matrix is not None
    violations = check(problem, broken, problem.matrix.distances, problem.matrix.durations)
    assert any("outside the route" in v for v in violations)
