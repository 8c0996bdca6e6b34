"""Large waves planned in parts: clusters first, then groups of routes re-planned together."""

from __future__ import annotations

import time

import numpy as np
from routing_cases import grid_problem

from fulfill_routing.checker import check
from fulfill_routing.engines import Sequences, SolveParams
from fulfill_routing.engines.ortools_engine import ORToolsEngine, ORToolsTuning
from fulfill_routing.engines.parts import PartsTuning, _improve_one_part, _Plan, can_split
from fulfill_routing.model import PickupDelivery, Problem, Stop
from fulfill_routing.schedule import Context
from fulfill_routing.solver import build_solution

SMALL_PARTS = PartsTuning(above_stops=50, cluster_stops=25, part_stops=40, part_seconds=0.3)


def context(problem: Problem) -> Context:
    assert problem.matrix is not None
    return Context.of(problem, problem.matrix.distances, problem.matrix.durations)


def planned_in_parts(problem: Problem, limit: float) -> Sequences:
    engine = ORToolsEngine(ORToolsTuning(parts=SMALL_PARTS))
    return engine.solve(context(problem), SolveParams(time_limit_s=limit))


def test_a_large_wave_planned_in_parts_serves_every_stop_and_passes_the_checker() -> None:
    problem = grid_problem(150, vehicles=12, capacity=(15,), seed=4)
    started = time.perf_counter()
    sequences = planned_in_parts(problem, 3.0)
    assert time.perf_counter() - started < 3.5
    solution = build_solution(context(problem), sequences, "ortools", 0)
    assert solution.feasible and not solution.unserved
    assert problem.matrix is not None
    assert check(problem, solution, problem.matrix.distances, problem.matrix.durations) == []


def test_stops_of_clusters_left_without_a_van_are_placed_by_the_search() -> None:
    problem = grid_problem(120, vehicles=3, seed=6)  # 5 clusters, 3 vans
    solution = build_solution(context(problem), planned_in_parts(problem, 4.0), "ortools", 0)
    assert solution.feasible and not solution.unserved


def test_a_part_replaces_its_routes_only_when_it_is_cheaper() -> None:
    ctx = context(grid_problem(60, vehicles=4, seed=2))
    plan = _Plan(ctx)
    stops = [s.id for s in ctx.problem.stops]
    first = {f"v{k}": stops[k::4] for k in range(4)}
    plan.replace(first, {v: plan.cost_of(v, r) for v, r in first.items()})
    before = dict(plan.routes)

    def worse(part: Context, until: float) -> Sequences:  # every route backwards, one dropped
        routes = {v: list(reversed(r)) for v, r in part.problem.initial_routes.items()}
        routes.popitem()
        return routes

    _improve_one_part(plan, time.perf_counter() + 1, np.random.default_rng(0), worse, SMALL_PARTS)
    assert plan.routes == before and not plan.unserved

    engine = ORToolsEngine()
    cost = sum(plan.costs.values())
    for seed in range(3):
        _improve_one_part(
            plan,
            time.perf_counter() + 1,
            np.random.default_rng(seed),
            engine._solve_until,
            SMALL_PARTS,
        )
    assert sum(plan.costs.values()) < cost and not plan.unserved
    assert sorted(s for r in plan.routes.values() for s in r) == sorted(stops)


def test_pairs_locks_and_previous_plans_are_planned_whole() -> None:
    base = grid_problem(60, vehicles=4, seed=2)
    assert can_split(base, SMALL_PARTS)
    assert not can_split(base, PartsTuning())  # too small to split by default
    paired = base.model_copy(update={"pairs": (PickupDelivery(pickup="s1", delivery="s2"),)})
    locked = base.model_copy(update={"fixed_routes": {"v0": ("s1",)}})
    previous = base.model_copy(update={"initial_routes": {"v0": ("s1", "s2")}})
    for problem in (paired, locked, previous):
        assert not can_split(problem, SMALL_PARTS)


def test_optional_stops_that_do_not_pay_stay_out_in_parts() -> None:
    base = grid_problem(80, vehicles=6, seed=9)
    far = Stop(id="far", location=1, service_time=900, penalty=1)  # 900 s of service for 1
    problem = base.model_copy(update={"stops": (*base.stops[1:], far)})
    solution = build_solution(context(problem), planned_in_parts(problem, 2.0), "ortools", 0)
    assert [u.stop for u in solution.unserved] == ["far"]
    assert solution.feasible
