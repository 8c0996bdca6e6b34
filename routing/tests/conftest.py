from __future__ import annotations

from pathlib import Path

import pytest

SOLOMON = Path(__file__).resolve().parent / "data" / "solomon"


@pytest.fixture(scope="session")
def solomon_dir() -> Path:
    """The Solomon instances shipped with the repository (``data/README.md``)."""
    return SOLOMON
