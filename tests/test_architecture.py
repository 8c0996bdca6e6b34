"""The dependency rules of docs/architecture.md (layers and libraries), checked by import-linter."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_service_is_layered_and_the_libraries_stand_alone() -> None:
    lint_imports = shutil.which("lint-imports")
    assert lint_imports, "import-linter is a dev dependency"
    result = subprocess.run(
        [lint_imports, "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert f"{len(contracts['contracts'])} kept, 0 broken" in result.stdout


def test_every_source_module_holds_one_job_in_under_400_lines() -> None:
    roots = ["src", "routing/src", "carriers/src", "devservers/src"]
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text().splitlines())
        for root in roots
        for path in (ROOT / root).rglob("*.py")
    }
    assert len(sizes) > 100  # the tree was found
    assert {path: n for path, n in sizes.items() if n > 400} == {}


def test_formatting_is_never_switched_off() -> None:
    roots = ["src", "routing", "carriers", "devservers", "tests", "bench"]
    skipped = [
        str(path.relative_to(ROOT))
        for root in roots
        for path in (ROOT / root).rglob("*.py")
        if "fmt: " + "skip" in path.read_text() or "fmt: " + "off" in path.read_text()
    ]
    assert skipped == []
