"""``fulfill-routing``: solve one instance, or benchmark a folder against best known solutions."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from fulfill_routing.errors import InstanceError, NoValidSolution
from fulfill_routing.model import Problem, Solution
from fulfill_routing.readers import SCALE, read_best_known, read_instance
from fulfill_routing.solver import ENGINES, solve

console = Console(stderr=True)


def load_problem(path: Path) -> tuple[Problem, int]:
    """The problem in ``path`` and the factor its distances are scaled by."""
    if path.suffix.lower() == ".json":
        try:
            return Problem.model_validate_json(path.read_text()), 1
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "problem"
            raise InstanceError(f"{path}: {where}: {first['msg']}") from None
    return read_instance(path), SCALE


def summary(path: Path, problem: Problem, solution: Solution, scale: int) -> dict[str, Any]:
    numeric = all(s.id.isdigit() for s in problem.stops)
    ident = int if numeric else str
    return {
        "instance": problem.name or path.stem,
        "vehicles": solution.vehicles_used,
        "distance": solution.distance / scale,
        "cost": solution.cost,
        "feasible": solution.feasible,
        "routes": [[ident(v.stop) for v in r.visits] for r in solution.routes if r.visits],
        "unserved": [{"stop": ident(u.stop), "reason": u.reason} for u in solution.unserved],
        "engine": solution.engine,
        "seconds": solution.seconds,
    }


@dataclass
class BenchRow:
    instance: str
    vehicles: int
    distance: float
    bks: float | None
    bks_vehicles: int | None
    gap_pct: float | None
    seconds: float
    engine: str


def bench(folder: Path, time_limit: float, engine: str, pattern: str) -> list[BenchRow]:
    files = sorted(p for p in folder.glob(pattern) if p.suffix.lower() in {".txt", ".vrp"})
    if not files:
        raise InstanceError(f"{folder}: no .txt or .vrp instances match {pattern!r}")
    rows = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("solving", total=len(files))
        for path in files:
            progress.update(task, description=f"{path.stem} ({time_limit:g} s)")
            problem, scale = load_problem(path)
            solution = solve(problem, engine=engine, time_limit_s=time_limit)
            rows.append(_row(path, solution, scale))
            progress.advance(task)
    return rows


def _row(path: Path, solution: Solution, scale: int) -> BenchRow:
    sol = path.with_suffix(".sol")
    best = read_best_known(sol) if sol.exists() else None
    distance = solution.distance / scale
    gap = 100 * (distance - best.cost) / best.cost if best and solution.feasible else None
    return BenchRow(
        instance=path.stem,
        vehicles=solution.vehicles_used,
        distance=round(distance, 1),
        bks=best.cost if best else None,
        bks_vehicles=best.vehicles if best else None,
        gap_pct=round(gap, 2) if gap is not None else None,
        seconds=solution.seconds,
        engine=solution.engine,
    )


def print_bench(rows: list[BenchRow]) -> None:
    table = Table(title="fulfill-routing against best known solutions")
    for column in ("instance", "vehicles", "distance", "BKS", "BKS veh.", "gap %", "s", "engine"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            r.instance,
            str(r.vehicles),
            f"{r.distance:.1f}",
            _fmt(r.bks),
            _fmt(r.bks_vehicles),
            _fmt(r.gap_pct),
            f"{r.seconds:.1f}",
            r.engine,
        )
    console.print(table)
    gaps = [r.gap_pct for r in rows if r.gap_pct is not None]
    mean = sum(gaps) / len(gaps) if gaps else float("nan")
    console.print(f"mean gap to BKS: {mean:.2f} % over {len(gaps)} instances")
    print(json.dumps({"mean_gap_pct": round(mean, 3), "rows": [asdict(r) for r in rows]}))


def _fmt(value: float | int | None) -> str:
    return "-" if value is None else f"{value}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fulfill-routing", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    engines = ["auto", *ENGINES]
    solve_cmd = commands.add_parser("solve", help="solve a Solomon, VRPLIB or JSON problem")
    solve_cmd.add_argument("file", type=Path)
    solve_cmd.add_argument("--time-limit", type=float, default=10.0, help="seconds (wall clock)")
    solve_cmd.add_argument("--engine", choices=engines, default="auto")
    solve_cmd.add_argument("--seed", type=int, default=0)
    solve_cmd.add_argument("--json", action="store_true", help="print the result as JSON")
    bench_cmd = commands.add_parser("bench", help="solve every instance in a folder")
    bench_cmd.add_argument("folder", type=Path)
    bench_cmd.add_argument("--time-limit", type=float, default=10.0)
    bench_cmd.add_argument("--engine", choices=engines, default="auto")
    bench_cmd.add_argument("--pattern", default="*", help="glob of instance files, e.g. 'R1*'")
    args = parser.parse_args(argv)
    try:
        if args.command == "solve":
            problem, scale = load_problem(args.file)
            solution = solve(
                problem, engine=args.engine, time_limit_s=args.time_limit, seed=args.seed
            )
            result = summary(args.file, problem, solution, scale)
            if args.json:
                print(json.dumps(result))
            else:
                console.print(
                    f"{result['instance']}: {result['vehicles']} vehicles, distance "
                    f"{result['distance']:.1f}, {len(result['unserved'])} unserved, "
                    f"engine {result['engine']}, {result['seconds']:.1f} s"
                )
        else:
            print_bench(bench(args.folder, args.time_limit, args.engine, args.pattern))
    except (InstanceError, ValueError, NoValidSolution) as exc:
        console.print(f"fulfill-routing: {exc}", markup=False, highlight=False)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
