"""Route planning: ours against PyVRP and VROOM, measured side by side in the same run.

For each instance every solver gets the same wall-clock limit: our ``auto`` (OR-Tools and PyVRP
in parallel, the better checked plan wins), our OR-Tools engine alone, PyVRP alone, and VROOM
(pyvroom). Every plan, VROOM's too, is re-verified by our checker. Then the dispatcher's
targets: the first feasible plan of a 1,000-stop wave, a warm re-plan after moving one stop,
and the insertion check on a 500-stop plan.

    uv run python bench/routing.py [--quick] [--time-limit 10] [--pattern 'R1*']
        [--city 1000] [--skip-solomon] [--skip-targets]

Prints tables, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import vroom
from rich.console import Console
from rich.table import Table

from fulfill_routing import (
    SCALE,
    Context,
    Problem,
    Solution,
    best_insertion,
    build_solution,
    check,
    city_wave,
    matrices,
    read_best_known,
    read_instance,
    solve,
)

SOLOMON = Path(__file__).resolve().parents[1] / "routing" / "tests" / "data" / "solomon"
SOLVERS = ("auto", "ortools", "pyvrp", "vroom")
console = Console(stderr=True)


def run_vroom(problem: Problem, time_limit_s: float) -> Solution:
    """VROOM on the same matrices (one depot, identical vans, one window per stop)."""
    started = time.perf_counter()
    distances, durations = matrices(problem)
    ctx = Context.of(problem, distances, durations)
    data = vroom.Input()
    data.set_durations_matrix("car", durations.astype(np.uint32))
    data.set_costs_matrix("car", distances.astype(np.uint32))
    depots = problem.depot_index()
    for k, v in enumerate(problem.vehicles):
        start = problem.depots[depots[v.start_depot]].location
        end = problem.depots[depots[v.end]].location
        data.add_vehicle(
            vroom.Vehicle(
                k + 1,
                start=start,
                end=end,
                capacity=list(v.capacity),
                time_window=vroom.TimeWindow(v.shift.start, v.shift.end),
            )
        )
    for j, s in enumerate(problem.stops):
        windows = [vroom.TimeWindow(w.start, w.end) for w in s.time_windows]
        data.add_job(
            vroom.Job(
                j + 1,
                location=s.location,
                default_service=s.service_time,
                delivery=list(problem.demand_of(s)),
                time_windows=windows or None,
            )
        )
    remaining = max(0.1, time_limit_s - (time.perf_counter() - started))
    result = data.solve(exploration_level=5, nb_threads=1, timeout=timedelta(seconds=remaining))
    routes = result.routes
    jobs = routes[routes.type == "job"]
    sequences = {
        problem.vehicles[int(vid) - 1].id: [problem.stops[int(j) - 1].id for j in group["id"]]
        for vid, group in jobs.groupby("vehicle_id", sort=True)
    }
    return build_solution(ctx, sequences, "vroom", time.perf_counter() - started)


def run(problem: Problem, solver: str, time_limit_s: float) -> tuple[Solution, float]:
    started = time.perf_counter()
    if solver == "vroom":
        solution = run_vroom(problem, time_limit_s)
    else:
        solution = solve(problem, engine=solver, time_limit_s=time_limit_s)
    elapsed = time.perf_counter() - started
    violations = check(problem, solution, *matrices(problem))
    if violations:
        raise AssertionError(f"{solver} on {problem.name}: {violations[0]}")
    return solution, elapsed


def compare(instances: list[tuple[Problem, float | None, int]], limit: float) -> dict[str, Any]:
    """Every solver on every instance; distances in the instance's units / scale."""
    rows = []
    for problem, bks, scale in instances:
        row: dict[str, Any] = {"instance": problem.name, "bks": bks}
        for solver in SOLVERS:
            console.print(f"  {problem.name}: {solver} ({limit:g} s)")
            solution, elapsed = run(problem, solver, limit)
            row[solver] = {
                "distance": round(solution.distance / scale, 1) if solution.feasible else None,
                "vehicles": solution.vehicles_used,
                "seconds": round(elapsed, 2),
                "engine": solution.engine,
            }
        rows.append(row)
    return {"rows": rows, **_ratios(rows)}


def _ratios(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def mean_ratio(a: str, b: str) -> float | None:
        pairs = [
            (r[a]["distance"], r[b]["distance"])
            for r in rows
            if r[a]["distance"] and r[b]["distance"]
        ]
        return round(statistics.mean(x / y for x, y in pairs), 4) if pairs else None

    def mean_gap(solver: str) -> float | None:
        gaps = [
            100 * (r[solver]["distance"] - r["bks"]) / r["bks"]
            for r in rows
            if r["bks"] and r[solver]["distance"]
        ]
        return round(statistics.mean(gaps), 2) if gaps else None

    return {
        "auto_vs_pyvrp": mean_ratio("auto", "pyvrp"),
        "auto_vs_vroom": mean_ratio("auto", "vroom"),
        "ortools_vs_pyvrp": mean_ratio("ortools", "pyvrp"),
        "gap_pct": {s: mean_gap(s) for s in SOLVERS},
    }


def print_comparison(title: str, result: dict[str, Any]) -> None:
    table = Table(title=title)
    table.add_column("instance")
    table.add_column("BKS", justify="right")
    for solver in SOLVERS:
        table.add_column(f"{solver} dist (veh)", justify="right")
    for row in result["rows"]:
        cells = [row["instance"], "-" if row["bks"] is None else f"{row['bks']:.1f}"]
        for solver in SOLVERS:
            r = row[solver]
            cells.append(
                "infeasible" if r["distance"] is None else f"{r['distance']:.1f} ({r['vehicles']})"
            )
        table.add_row(*cells)
    console.print(table)
    console.print(
        f"mean ratio auto/PyVRP {result['auto_vs_pyvrp']}, auto/VROOM {result['auto_vs_vroom']}, "
        f"OR-Tools/PyVRP {result['ortools_vs_pyvrp']}; mean gap to BKS % {result['gap_pct']}"
    )


def dispatcher_targets(wave: int, vans: int, insertion_plan: int) -> dict[str, Any]:
    """First feasible plan, warm re-plan after a move, and the insertion check."""
    problem = city_wave(wave, vans, seed=7)
    distances, durations = matrices(problem)
    problem = problem.model_copy(update={"matrix": None})
    fixed = Problem.model_validate(
        {
            **problem.model_dump(by_alias=True),
            "matrix": {"distances": distances, "durations": durations},
        }
    )
    started = time.perf_counter()
    first = solve(fixed, engine="ortools", time_limit_s=5.0)
    first_s = time.perf_counter() - started
    plan, _ = run(fixed, "ortools", 20.0)
    moved = _move_one_stop(fixed, plan)
    started = time.perf_counter()
    replanned = solve(moved, engine="ortools", time_limit_s=2.0)
    replan_s = time.perf_counter() - started
    insertion = _insertion_latency(insertion_plan, vans)
    return {
        "wave_stops": wave,
        "vans": vans,
        "first_plan_s": round(first_s, 2),
        "first_plan_feasible": first.feasible,
        "replan_s": round(replan_s, 2),
        "replan_cost_vs_before": round(replanned.cost / plan.cost, 4),
        **insertion,
    }


def _move_one_stop(problem: Problem, plan: Solution) -> Problem:
    """A dispatcher moves the last stop of the longest route to the end of the shortest one."""
    routes = {r.vehicle: [v.stop for v in r.visits] for r in plan.routes}
    longest = max(routes, key=lambda v: len(routes[v]))
    shortest = min(routes, key=lambda v: len(routes[v]))
    stop = routes[longest].pop()
    routes[shortest].append(stop)
    return problem.model_copy(update={"initial_routes": {v: tuple(s) for v, s in routes.items()}})


def _insertion_latency(stops: int, vans: int) -> dict[str, Any]:
    problem = city_wave(stops + 100, vans, seed=11)
    distances, durations = matrices(problem)
    planned = problem.model_copy(update={"stops": problem.stops[:stops]})
    plan = solve(planned, engine="ortools", time_limit_s=10.0)
    ctx = Context.of(problem, distances, durations)
    timings, fits = [], 0
    for stop in problem.stops[stops:]:
        started = time.perf_counter()
        answer = best_insertion(ctx, plan, stop.id)
        timings.append((time.perf_counter() - started) * 1000)
        fits += answer.fits
    timings.sort()
    return {
        "insertion_plan_stops": sum(len(r.visits) for r in plan.routes),
        "insertion_p50_ms": round(timings[len(timings) // 2], 2),
        "insertion_p99_ms": round(timings[int(0.99 * len(timings)) - 1], 2),
        "insertion_fits": fits,
        "insertion_tried": len(timings),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--time-limit", type=float, default=None)
    parser.add_argument("--pattern", default=None, help="Solomon instances, e.g. 'R1*'")
    parser.add_argument("--city", type=int, action="append", help="stops of a city wave")
    parser.add_argument("--skip-solomon", action="store_true")
    parser.add_argument("--skip-targets", action="store_true")
    args = parser.parse_args()
    limit = args.time_limit or (2.0 if args.quick else 10.0)
    pattern = args.pattern or ("[CR]101" if args.quick else "*")
    cities = args.city or ([200] if args.quick else [1000])
    figures: dict[str, Any] = {"bench": "routing", "quick": args.quick, "time_limit_s": limit}
    if not args.skip_solomon:
        instances = [
            (read_instance(p), read_best_known(p.with_suffix(".sol")).cost, SCALE)
            for p in sorted(SOLOMON.glob(f"{pattern}.txt"))
        ]
        figures["solomon"] = compare(instances, limit)
        print_comparison(f"Solomon VRPTW, {limit:g} s each", figures["solomon"])
    city_instances = []
    for n in cities:
        wave = city_wave(n, max(10, n // 25), seed=1)
        d, t = matrices(wave)
        fixed = Problem.model_validate(
            {
                **wave.model_dump(by_alias=True),
                "locations": None,
                "matrix": {"distances": d, "durations": t},
            }
        )
        city_instances.append((fixed, None, 1000))  # report km
    figures["cities"] = compare(city_instances, limit * (3 if not args.quick else 1.5))
    print_comparison("Same-day city waves (km)", figures["cities"])
    if not args.skip_targets:
        targets = dispatcher_targets(*((300, 12, 200) if args.quick else (1000, 40, 500)))
        figures["targets"] = targets
        console.print(f"dispatcher targets: {targets}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
