"""Every constraint kind, solved by each engine that models it, re-verified by the checker."""

from __future__ import annotations

import multiprocessing
import time
from typing import Any

import numpy as np
import pytest
from routing_cases import grid_problem

from fulfill_routing.checker import check
from fulfill_routing.errors import UnsupportedFeature
from fulfill_routing.model import Break, Problem, Solution, Stop, TimeWindow, Vehicle
from fulfill_routing.solver import matrices, solve

LIMIT = 1.0


def solved(problem: Problem, engine: str, limit: float = LIMIT) -> Solution:
    solution = solve(problem, engine=engine, time_limit_s=limit)
    distances, durations = matrices(problem)
    assert check(problem, solution, distances, durations) == []
    return solution


def route_of(solution: Solution, vehicle: str) -> list[str]:
    return next(([v.stop for v in r.visits] for r in solution.routes if r.vehicle == vehicle), [])


@pytest.mark.parametrize("engine", ["ortools", "pyvrp", "auto"])
def test_capacity_in_several_dimensions(engine: str) -> None:
    stops = tuple(Stop(id=f"s{i}", location=i, demand=(1, 3)) for i in range(1, 9))
    problem = grid_problem(8, vehicles=5, capacity=(10, 6), stops=stops)
    solution = solved(problem, engine)
    assert solution.feasible
    assert all(r.peak_load[1] <= 6 for r in solution.routes)
    assert solution.vehicles_used >= 4  # the volume dimension binds: two stops per van


@pytest.mark.parametrize("engine", ["ortools", "pyvrp", "auto"])
def test_time_windows_are_kept_with_waiting(engine: str) -> None:
    stops = tuple(
        Stop(
            id=f"s{i}",
            location=i,
            service_time=5,
            time_windows=(TimeWindow(start=100 * i, end=100 * i + 30),),
        )
        for i in range(1, 7)
    )
    solution = solved(grid_problem(6, vehicles=2, stops=stops), engine)
    assert solution.feasible
    visits = [v for r in solution.routes for v in r.visits]
    assert all(100 * int(v.stop[1:]) <= v.start <= 100 * int(v.stop[1:]) + 30 for v in visits)


@pytest.mark.parametrize("engine", ["ortools", "auto"])
def test_several_windows_per_stop(engine: str) -> None:
    late = Stop(
        id="s1",
        location=1,
        time_windows=(TimeWindow(start=0, end=1), TimeWindow(start=400, end=450)),
    )
    problem = grid_problem(3, vehicles=1, stops=(late, *grid_problem(3).stops[1:]))
    solution = solved(problem, engine)
    start = next(v.start for r in solution.routes for v in r.visits if v.stop == "s1")
    assert 400 <= start <= 450
    assert solution.engine == "ortools"


def test_an_engine_that_cannot_model_a_feature_is_refused() -> None:
    rest = Break(window=TimeWindow(start=50, end=60), duration=10)
    fleet = (
        Vehicle(
            id="v0",
            start_depot="d",
            capacity=(100,),
            shift=TimeWindow(start=0, end=1000),
            rest=rest,
        ),
    )
    problem = grid_problem(4, fleet=fleet)
    with pytest.raises(UnsupportedFeature, match="breaks"):
        solve(problem, engine="pyvrp", time_limit_s=LIMIT)
    assert solve(problem, engine="auto", time_limit_s=LIMIT).engine == "ortools"


@pytest.mark.parametrize("engine", ["ortools", "pyvrp", "auto"])
def test_optional_stops_are_left_out_only_when_they_do_not_pay(engine: str) -> None:
    base = grid_problem(4, vehicles=1)
    cheap = base.stops[0].model_copy(update={"penalty": 1})
    dear = base.stops[1].model_copy(update={"penalty": 10**6})
    problem = base.model_copy(update={"stops": (cheap, dear, *base.stops[2:])})
    solution = solved(problem, engine)
    assert [u.stop for u in solution.unserved] == ["s1"]
    assert "costs more than its penalty" in solution.unserved[0].reason
    assert solution.feasible


@pytest.mark.parametrize("engine", ["ortools", "pyvrp"])
def test_an_impossible_required_stop_is_reported_with_the_reason(engine: str) -> None:
    base = grid_problem(3, vehicles=1)
    impossible = base.stops[0].model_copy(update={"time_windows": (TimeWindow(start=0, end=0),)})
    problem = base.model_copy(update={"stops": (impossible, *base.stops[1:])})
    solution = solved(problem, engine)
    assert not solution.feasible
    assert [u.stop for u in solution.unserved] == ["s1"]
    assert solution.unserved[0].reason.startswith("no vehicle can serve it, even alone")


@pytest.mark.parametrize("engine", ["ortools", "auto"])
def test_pickup_before_delivery_on_one_route(engine: str) -> None:
    stops = (
        Stop(id="pick", location=1, demand=(5,)),
        Stop(id="drop", location=2, demand=(5,)),
        *(Stop(id=f"s{i}", location=i, demand=(1,)) for i in range(3, 9)),
    )
    problem = grid_problem(
        8, vehicles=2, capacity=(6,), stops=stops, pairs=({"pickup": "pick", "delivery": "drop"},)
    )
    solution = solved(problem, engine)
    route = next(r for r in solution.routes if any(v.stop == "pick" for v in r.visits))
    order = [v.stop for v in route.visits]
    assert order.index("pick") < order.index("drop")


def test_a_break_is_taken_within_its_window() -> None:
    rest = Break(window=TimeWindow(start=60, end=90), duration=30)
    fleet = tuple(
        Vehicle(
            id=f"v{k}",
            start_depot="d",
            capacity=(100,),
            shift=TimeWindow(start=0, end=2000),
            rest=rest,
        )
        for k in range(2)
    )
    solution = solved(grid_problem(8, fleet=fleet), "ortools")
    for route in solution.routes:
        assert route.rest is not None and 60 <= route.rest.start <= 90


@pytest.mark.parametrize("engine", ["ortools", "auto"])
def test_a_fixed_prefix_stays_first_and_in_order(engine: str) -> None:
    problem = grid_problem(8, vehicles=2, fixed_routes={"v1": ("s7", "s2")})
    solution = solved(problem, engine)
    assert route_of(solution, "v1")[:2] == ["s7", "s2"]


def test_max_stops_and_max_duration() -> None:
    fleet = tuple(
        Vehicle(
            id=f"v{k}",
            start_depot="d",
            capacity=(100,),
            shift=TimeWindow(start=0, end=5000),
            max_stops=3,
            max_duration=400,
        )
        for k in range(4)
    )
    solution = solved(grid_problem(9, fleet=fleet), "ortools")
    assert all(len(r.visits) <= 3 and r.duration <= 400 for r in solution.routes)
    assert solution.feasible


@pytest.mark.parametrize("engine", ["ortools", "pyvrp"])
def test_vehicles_may_end_at_another_depot(engine: str) -> None:
    base = grid_problem(6)
    depots = (*base.depots, base.depots[0].model_copy(update={"id": "far", "location": 6}))
    fleet = (
        Vehicle(
            id="v0",
            start_depot="d",
            end_depot="far",
            capacity=(100,),
            shift=TimeWindow(start=0, end=2000),
        ),
    )
    stops = base.stops[:5]
    problem = base.model_copy(update={"depots": depots, "vehicles": fleet, "stops": stops})
    problem = Problem.model_validate(problem.model_dump(by_alias=True))
    solution = solved(problem, engine)
    assert solution.routes[0].vehicle == "v0" and solution.feasible


def test_warm_start_never_worsens_the_previous_plan() -> None:
    problem = grid_problem(40, vehicles=5, seed=3)
    first = solved(problem, "ortools", limit=1.0)
    previous = {r.vehicle: tuple(v.stop for v in r.visits) for r in first.routes}
    again = solved(problem.model_copy(update={"initial_routes": previous}), "ortools", limit=0.5)
    assert again.cost <= first.cost


@pytest.mark.parametrize("engine", ["ortools", "pyvrp", "auto"])
def test_the_wall_clock_limit_is_kept(engine: str) -> None:
    problem = grid_problem(200, vehicles=20, seed=5)
    started = time.perf_counter()
    solve(problem, engine=engine, time_limit_s=1.5)
    assert time.perf_counter() - started < 1.5 + 1.0


def test_a_problem_with_locations_gets_its_matrix_from_the_travel_provider() -> None:
    rng = np.random.default_rng(1)
    locations = [
        {"lat": 53.5 + rng.uniform(-0.05, 0.05), "lon": -113.5 + rng.uniform(-0.05, 0.05)}
        for _ in range(6)
    ]
    problem = Problem.model_validate(
        {
            "depots": [{"id": "d", "location": 0}],
            "vehicles": [{"id": "v", "start_depot": "d", "shift": {"start": 0, "end": 36000}}],
            "stops": [{"id": f"s{i}", "location": i, "service_time": 120} for i in range(1, 6)],
            "locations": locations,
        }
    )
    solution = solved(problem, "auto")
    assert solution.feasible and len(solution.routes[0].visits) == 5


def _solve_in_child(sender: Any) -> None:
    try:
        solution = solve(grid_problem(30, vehicles=4, seed=8), engine="auto", time_limit_s=1.0)
        sender.send(("ok", solution.engine, solution.feasible))
    except Exception as exc:
        sender.send(("error", repr(exc), False))


def test_auto_runs_inside_a_daemonic_worker_process() -> None:
    """Celery's prefork workers are daemonic, and ``multiprocessing`` forbids them children."""
    fork = multiprocessing.get_context("fork")
    receiver, sender = fork.Pipe(duplex=False)
    worker = fork.Process(target=_solve_in_child, args=(sender,), daemon=True)
    worker.start()
    assert receiver.poll(30)
    outcome, engine, feasible = receiver.recv()
    worker.join(5)
    assert outcome == "ok", engine
    assert engine in {"ortools", "pyvrp"} and feasible
