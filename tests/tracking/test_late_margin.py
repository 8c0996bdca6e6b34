"""A parcel is late when its ETA misses the promise by more than the ETA's own uncertainty:
a share of the time still to go, at most ten minutes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fulfill.tracking.recording import late_for_sure

NOW = datetime(2026, 11, 18, 18, 0, tzinfo=UTC)
END = NOW + timedelta(hours=3)


def test_a_slip_hours_ahead_is_not_yet_late_but_a_real_delay_is() -> None:
    assert not late_for_sure(END + timedelta(minutes=5), END, NOW)  # 3 h ahead: 10 min margin
    assert late_for_sure(END + timedelta(minutes=11), END, NOW)
    assert not late_for_sure(END, END, NOW)


def test_the_margin_shrinks_as_the_arrival_nears() -> None:
    near = END - timedelta(minutes=10)  # the ETA is 12 minutes away: a 72 s margin
    assert late_for_sure(END + timedelta(minutes=2), END, near)
    assert not late_for_sure(END + timedelta(seconds=60), END, near)


def test_an_overdue_parcel_is_late_at_once() -> None:
    assert late_for_sure(END + timedelta(seconds=1), END, END + timedelta(seconds=1))
    assert not late_for_sure(None, END, NOW) and not late_for_sure(END, None, NOW)
