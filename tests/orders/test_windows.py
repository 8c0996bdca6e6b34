from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fulfill.config import Settings
from fulfill.inventory.models import Node
from fulfill.orders.models import ServiceLevel
from fulfill.orders.windows import next_cutoff, promise_window

SETTINGS = Settings(same_day_window_offset_min=60, same_day_window_length_min=180)


def node(timezone: str, cutoffs: list[str], radius: float = 20) -> Node:
    return Node(
        code="N",
        name="N",
        kind="warehouse",
        lat=0,
        lon=0,
        timezone=timezone,
        same_day_radius_km=radius,
        wave_cutoffs=cutoffs,
    )


@pytest.mark.parametrize(
    ("timezone", "now", "expected"),
    [
        # 08:30 in Edmonton (UTC-7): the 10:00 wave.
        (
            "America/Edmonton",
            datetime(2026, 11, 18, 15, 30, tzinfo=UTC),
            "2026-11-18T17:00:00+00:00",
        ),
        # 10:00 sharp has closed the 10:00 wave: the 13:00 one.
        (
            "America/Edmonton",
            datetime(2026, 11, 18, 17, 0, tzinfo=UTC),
            "2026-11-18T20:00:00+00:00",
        ),
        # 23:30 UTC is 16:30 in Edmonton: past the last cutoff, though "today" in UTC is over.
        ("America/Edmonton", datetime(2026, 11, 18, 23, 30, tzinfo=UTC), None),
        # 01:00 UTC on the 19th is still the 18th in Edmonton (18:00): none left.
        ("America/Edmonton", datetime(2026, 11, 19, 1, 0, tzinfo=UTC), None),
        # The same instant is 10:00 on the 19th in Sydney (UTC+11): the 13:00 wave.
        (
            "Australia/Sydney",
            datetime(2026, 11, 18, 23, 0, tzinfo=UTC),
            "2026-11-19T02:00:00+00:00",
        ),
        # Summer time in Edmonton (UTC-6): the 10:00 wave is at 16:00 UTC.
        ("America/Edmonton", datetime(2026, 7, 1, 14, 0, tzinfo=UTC), "2026-07-01T16:00:00+00:00"),
    ],
)
def test_next_cutoff_is_in_the_node_timezone(
    timezone: str, now: datetime, expected: str | None
) -> None:
    cutoff = next_cutoff(node(timezone, ["10:00", "13:00", "16:00"]), now)
    assert (cutoff.astimezone(UTC).isoformat() if cutoff else None) == expected


def test_same_day_window_follows_the_cutoff_in_utc() -> None:
    window = promise_window(
        node("America/Edmonton", ["10:00"]),
        ServiceLevel.SAME_DAY,
        datetime(2026, 11, 18, 15, 30, tzinfo=UTC),
        SETTINGS,
    )
    assert window is not None
    assert (window.order_by, window.start, window.end) == (
        datetime(2026, 11, 18, 17, 0, tzinfo=UTC),
        datetime(2026, 11, 18, 18, 0, tzinfo=UTC),
        datetime(2026, 11, 18, 21, 0, tzinfo=UTC),
    )


def test_no_same_day_without_a_radius_or_cutoffs() -> None:
    now = datetime(2026, 11, 18, 15, 30, tzinfo=UTC)
    no_radius = node("America/Edmonton", ["10:00"], radius=0)
    no_cutoffs = node("America/Edmonton", [])
    for n in (no_radius, no_cutoffs):
        assert promise_window(n, ServiceLevel.SAME_DAY, now, SETTINGS) is None


def test_next_day_is_tomorrow_in_the_node_timezone_across_midnight_utc() -> None:
    # 20:00 in Edmonton on the 18th is 03:00 UTC on the 19th: "tomorrow" is still the 19th.
    now = datetime(2026, 11, 19, 3, 0, tzinfo=UTC)
    window = promise_window(node("America/Edmonton", []), ServiceLevel.NEXT_DAY, now, SETTINGS)
    assert window is not None
    assert window.start == datetime(2026, 11, 19, 16, 0, tzinfo=UTC)  # 09:00 MST on the 19th
    # Order by local midnight, 07:00 UTC on the 19th, to keep it.
    assert window.order_by == datetime(2026, 11, 19, 7, 0, tzinfo=UTC)
