from __future__ import annotations

from pathlib import Path

import pytest

from fulfill_routing.checker import check
from fulfill_routing.errors import InstanceError
from fulfill_routing.readers import SCALE, read_best_known, read_instance
from fulfill_routing.schedule import Context
from fulfill_routing.solver import build_solution


def test_every_best_known_solution_passes_our_checker_at_its_published_distance(
    solomon_dir: Path,
) -> None:
    """Readers, scheduler, checker and distance convention, against 56 published answers."""
    instances = sorted(solomon_dir.glob("*.txt"))
    assert len(instances) == 56
    for path in instances:
        problem = read_instance(path)
        assert len(problem.stops) == 100
        best = read_best_known(path.with_suffix(".sol"))
        assert problem.matrix is not None
        ctx = Context.of(problem, problem.matrix.distances, problem.matrix.durations)
        sequences = {
            problem.vehicles[k].id: [str(c) for c in route] for k, route in enumerate(best.routes)
        }
        solution = build_solution(ctx, sequences, "bks", 0.0)
        assert check(problem, solution, ctx.distances, ctx.durations) == [], path.stem
        assert solution.unserved == ()
        assert solution.distance / SCALE == pytest.approx(best.cost, abs=0.11), path.stem


def test_c101_reads_as_published(solomon_dir: Path) -> None:
    problem = read_instance(solomon_dir / "C101.txt")
    assert (problem.name, len(problem.vehicles), problem.vehicles[0].capacity) == (
        "C101",
        25,
        (200,),
    )
    first = problem.stops[0]
    assert (first.id, first.demand, first.service_time) == ("1", (10,), 900)
    assert (first.time_windows[0].start, first.time_windows[0].end) == (9120, 9670)


def test_a_vrplib_file_reads(tmp_path: Path) -> None:
    path = tmp_path / "tiny.vrp"
    path.write_text(
        "NAME : tiny\nTYPE : VRPTW\nDIMENSION : 4\nVEHICLES : 2\nCAPACITY : 10\n"
        "EDGE_WEIGHT_TYPE : EUC_2D\nNODE_COORD_SECTION\n1 0 0\n2 3 4\n3 1 1\n4 6 0\n"
        "DEMAND_SECTION\n1 0\n2 4\n3 3\n4 6\nTIME_WINDOW_SECTION\n1 0 1000\n2 0 100\n"
        "3 10 50\n4 50 300\nSERVICE_TIME_SECTION\n1 0\n2 10\n3 10\n4 10\n"
        "DEPOT_SECTION\n1\n-1\nEOF\n"
    )
    problem = read_instance(path)
    assert [s.id for s in problem.stops] == ["1", "2", "3"]
    assert problem.matrix is not None and int(problem.matrix.distances[0, 1]) == 50  # 5.0 -> 50


@pytest.mark.parametrize("content", ["", "not an instance at all\n", "NAME : x\nDIMENSION : two\n"])
def test_malformed_files_are_a_clear_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.vrp"
    path.write_text(content)
    with pytest.raises(InstanceError, match=r"bad\.vrp"):
        read_instance(path)
