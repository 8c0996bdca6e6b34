"""The fast insertion check agrees with trying every position by brute force."""

from __future__ import annotations

import pytest
from routing_cases import grid_problem

from fulfill_routing.errors import Infeasible
from fulfill_routing.insertion import best_insertion
from fulfill_routing.model import Problem, Route, Solution, Stop, TimeWindow, Vehicle
from fulfill_routing.schedule import Context, schedule_route
from fulfill_routing.solver import matrices, solve


def brute_force(ctx: Context, plan: Solution, stop_id: str) -> int | None:
    vehicles = {v.id: v for v in ctx.problem.vehicles}
    best: int | None = None
    for route in plan.routes:
        ids = [v.stop for v in route.visits]
        for position in range(len(ids) + 1):
            try:
                candidate = schedule_route(
                    ctx, vehicles[route.vehicle], [*ids[:position], stop_id, *ids[position:]]
                )
            except Infeasible:
                continue
            added = candidate.cost - route.cost
            best = added if best is None else min(best, added)
    used = {r.vehicle for r in plan.routes}
    for vehicle in ctx.problem.vehicles:
        if vehicle.id not in used:
            try:
                alone = schedule_route(ctx, vehicle, [stop_id]).cost
            except Infeasible:
                continue
            best = alone if best is None else min(best, alone)
    return best


def plan_without(problem: Problem, stop_id: str) -> tuple[Context, Solution]:
    others = problem.model_copy(
        update={"stops": tuple(s for s in problem.stops if s.id != stop_id)}
    )
    plan = solve(others, engine="ortools", time_limit_s=0.5)
    return Context.of(problem, *matrices(problem)), plan


@pytest.mark.parametrize("seed", range(12))
def test_the_cheapest_insertion_matches_brute_force(seed: int) -> None:
    windows = tuple(
        Stop(
            id=f"s{i}",
            location=i,
            service_time=10,
            demand=(1,),
            time_windows=(TimeWindow(start=40 * (i % 7), end=40 * (i % 7) + 120 + 20 * seed),),
        )
        for i in range(1, 26)
    )
    fleet = tuple(
        Vehicle(
            id=f"v{k}",
            start_depot="d",
            capacity=(9,),
            shift=TimeWindow(start=0, end=900),
            duration_cost=seed % 3,
        )
        for k in range(4)
    )
    problem = grid_problem(25, fleet=fleet, stops=windows, seed=seed)
    ctx, plan = plan_without(problem, "s25")
    answer = best_insertion(ctx, plan, "s25")
    expected = brute_force(ctx, plan, "s25")
    if expected is None:
        assert not answer.fits and answer.reason
    else:
        assert answer.fits and answer.added_cost == expected
        route: Route | None = next((r for r in plan.routes if r.vehicle == answer.vehicle), None)
        if route is None:  # an idle van takes it alone
            return
        ids = [v.stop for v in route.visits]
        assert answer.position is not None
        ids.insert(answer.position, "s25")
        vehicle = next(v for v in problem.vehicles if v.id == answer.vehicle)
        assert schedule_route(ctx, vehicle, ids).cost - route.cost == expected


def test_an_idle_van_is_used_when_the_busy_one_is_full() -> None:
    fleet = tuple(
        Vehicle(id=f"v{k}", start_depot="d", capacity=(3,), shift=TimeWindow(start=0, end=999))
        for k in range(2)
    )
    problem = grid_problem(4, fleet=fleet)
    ctx, plan = plan_without(problem, "s4")
    busy = {r.vehicle for r in plan.routes}
    answer = best_insertion(ctx, plan, "s4")
    assert answer.fits and answer.vehicle not in busy


def test_a_stop_of_a_pair_is_not_inserted_alone() -> None:
    stops = (Stop(id="p", location=1, demand=(1,)), Stop(id="q", location=2, demand=(1,)))
    problem = grid_problem(2, stops=stops, pairs=({"pickup": "p", "delivery": "q"},))
    ctx = Context.of(problem, *matrices(problem))
    empty = Solution(routes=(), cost=0, distance=0, engine="none")
    answer = best_insertion(ctx, empty, "p")
    assert not answer.fits and "re-planning" in answer.reason


def test_a_full_van_says_why() -> None:
    fleet = (Vehicle(id="v0", start_depot="d", capacity=(3,), shift=TimeWindow(start=0, end=999)),)
    problem = grid_problem(4, fleet=fleet)
    ctx, plan = plan_without(problem, "s4")
    answer = best_insertion(ctx, plan, "s4")
    assert not answer.fits and "no capacity left" in answer.reason
