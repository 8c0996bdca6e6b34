"""The normalised tracking vocabulary every carrier adapter maps into.

Statuses only move forward: a late-arriving older event is kept but never regresses the
shipment. ``rank`` orders the life of a parcel; terminal statuses outrank everything else.
"""

from __future__ import annotations

from enum import StrEnum


class TrackingStatus(StrEnum):
    PENDING = "pending"
    INFO_RECEIVED = "info_received"
    PICKED_UP = "picked_up"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    AVAILABLE_FOR_PICKUP = "available_for_pickup"
    ATTEMPT_FAILED = "attempt_failed"
    EXCEPTION = "exception"
    RETURNING = "returning"
    UNKNOWN = "unknown"
    DELIVERED = "delivered"
    RETURNED = "returned"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset(
    {
        TrackingStatus.DELIVERED,
        TrackingStatus.RETURNED,
        TrackingStatus.CANCELLED,
        TrackingStatus.EXPIRED,
    }
)

# A failed attempt or an exception can be followed by a new delivery run, so they share the
# rank of "out for delivery": moving between them is allowed, falling back to transit is not.
_RANK: dict[TrackingStatus, int] = {
    TrackingStatus.UNKNOWN: 0,
    TrackingStatus.PENDING: 1,
    TrackingStatus.INFO_RECEIVED: 2,
    TrackingStatus.PICKED_UP: 3,
    TrackingStatus.IN_TRANSIT: 4,
    TrackingStatus.OUT_FOR_DELIVERY: 5,
    TrackingStatus.AVAILABLE_FOR_PICKUP: 5,
    TrackingStatus.ATTEMPT_FAILED: 5,
    TrackingStatus.EXCEPTION: 5,
    TrackingStatus.RETURNING: 6,
    TrackingStatus.DELIVERED: 9,
    TrackingStatus.RETURNED: 9,
    TrackingStatus.CANCELLED: 9,
    TrackingStatus.EXPIRED: 9,
}


def advance(current: TrackingStatus, incoming: TrackingStatus) -> TrackingStatus:
    """Return the status a shipment has after ``incoming``: never backwards, never out of a
    terminal status, and ``unknown`` never replaces something known."""
    if current.is_terminal or incoming is TrackingStatus.UNKNOWN:
        return current
    if incoming.rank >= current.rank:
        return incoming
    return current
