"""Fixtures of the dispatch tests."""

from __future__ import annotations

import pytest

from fulfill.config import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """These tests make waves overflow on purpose (orders before vans, small vans), to see what
    dispatch does with stops no van can take; sourcing would otherwise refuse them same day."""
    return settings.model_copy(update={"same_day_room_check": False})
