from __future__ import annotations

import os
from pathlib import Path

import pytest

SOLOMON = Path(__file__).resolve().parents[2].parent / "shared" / "bench" / "routing" / "solomon"


@pytest.fixture(scope="session")
def solomon_dir() -> Path:
    if not SOLOMON.is_dir():
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"{SOLOMON} is missing: CI runs with shared/ beside the repository")
        pytest.skip("the shared benchmark instances are not beside this checkout")
    return SOLOMON
