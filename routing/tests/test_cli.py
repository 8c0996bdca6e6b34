from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fulfill_routing.cli import main


def test_solve_prints_json_with_the_customer_numbers(
    solomon_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["solve", str(solomon_dir / "C101.txt"), "--time-limit", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"vehicles", "distance", "routes", "unserved", "engine", "seconds"} <= result.keys()
    served = sorted(c for route in result["routes"] for c in route)
    assert served == list(range(1, 101))
    assert result["distance"] >= 827.3  # never better than the best known solution


def test_bench_reports_the_gap_per_instance(
    solomon_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("C101", "R101"):
        for suffix in (".txt", ".sol"):
            shutil.copy(solomon_dir / f"{name}{suffix}", tmp_path)
    assert main(["bench", str(tmp_path), "--time-limit", "1"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [r["instance"] for r in report["rows"]] == ["C101", "R101"]
    assert all(r["gap_pct"] >= -0.01 for r in report["rows"])


@pytest.mark.parametrize("args", [["solve", "missing.txt"], ["bench", "/nonexistent"]])
def test_bad_input_is_a_one_line_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fulfill-routing:")
