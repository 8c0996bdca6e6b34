"""The own fleet's driver reports as tracking events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fulfill_carriers import ExceptionReason as R
from fulfill_carriers import TrackingStatus as S
from fulfill_carriers import driver_event

AT = datetime(2026, 11, 18, 18, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("route_started", S.OUT_FOR_DELIVERY),
        ("arrived", S.OUT_FOR_DELIVERY),
        ("delivered", S.DELIVERED),
        ("failed", S.ATTEMPT_FAILED),
    ],
)
def test_each_report_about_a_parcel_maps_to_a_status_with_its_type_kept(
    kind: str, status: S
) -> None:
    event = driver_event(kind, "f-1", AT, "vans:e1:f-1", reason="nobody home")
    assert event is not None
    assert (event.status, event.raw_code, event.event_id) == (status, kind, "vans:e1:f-1")
    assert event.key == "id:vans:e1:f-1"  # a replayed report is the same event


def test_a_position_says_nothing_about_a_parcel() -> None:
    assert driver_event("position", "f-1", AT, "e") is None


@pytest.mark.parametrize(
    ("words", "reason"),
    [
        ("Nobody home, card left", R.NOT_HOME),
        ("No access: gate locked", R.ADDRESS),
        ("Customer refused it", R.REFUSED),
        ("Box damaged in the van", R.DAMAGED),
        ("Road closed by snow", R.WEATHER),
        ("Dog", R.OTHER),
        (None, R.OTHER),
    ],
)
def test_a_drivers_words_for_a_failure_become_a_reason(words: str | None, reason: R) -> None:
    event = driver_event("failed", "f-1", AT, "e", reason=words)
    assert event is not None and event.reason is reason


def test_a_long_event_id_is_keyed_by_its_digest_within_the_columns_width() -> None:
    long_id = "vans-app-key:" + "0f8fad5b-d9cb-469f-a165-70867728950e" * 3
    event = driver_event("delivered", "f-1", AT, long_id)
    assert event is not None and len(event.key) <= 80 and event.key.startswith("id#")
    again = driver_event("delivered", "f-1", AT, long_id)
    assert again is not None and again.key == event.key
