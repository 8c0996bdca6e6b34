import pytest

from fulfill_carriers.status import TERMINAL, TrackingStatus, advance

S = TrackingStatus


@pytest.mark.parametrize(
    ("current", "incoming", "expected"),
    [
        (S.PENDING, S.IN_TRANSIT, S.IN_TRANSIT),
        (S.OUT_FOR_DELIVERY, S.IN_TRANSIT, S.OUT_FOR_DELIVERY),
        (S.OUT_FOR_DELIVERY, S.ATTEMPT_FAILED, S.ATTEMPT_FAILED),
        (S.ATTEMPT_FAILED, S.OUT_FOR_DELIVERY, S.OUT_FOR_DELIVERY),
        (S.IN_TRANSIT, S.UNKNOWN, S.IN_TRANSIT),
        (S.UNKNOWN, S.PICKED_UP, S.PICKED_UP),
        (S.DELIVERED, S.EXCEPTION, S.DELIVERED),
        (S.RETURNING, S.RETURNED, S.RETURNED),
        (S.EXCEPTION, S.RETURNING, S.RETURNING),
    ],
)
def test_advance_only_moves_forward(
    current: TrackingStatus, incoming: TrackingStatus, expected: TrackingStatus
) -> None:
    assert advance(current, incoming) is expected


def test_terminal_statuses_never_change() -> None:
    for terminal in TERMINAL:
        for incoming in TrackingStatus:
            assert advance(terminal, incoming) is terminal


def test_vocabulary_is_the_designed_one() -> None:
    assert {s.value for s in TrackingStatus} == {
        "pending",
        "info_received",
        "picked_up",
        "in_transit",
        "out_for_delivery",
        "available_for_pickup",
        "attempt_failed",
        "delivered",
        "exception",
        "returning",
        "returned",
        "cancelled",
        "expired",
        "unknown",
    }
