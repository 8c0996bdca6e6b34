"""The shop's own vans as a carrier: what drivers report becomes tracking events.

Drivers report through the service's driver-event API, so this adapter is never polled and
receives no webhooks; it maps each report to the normalised vocabulary, the report's type kept
as the raw code and its id as the event id (a replayed report is the same event).
"""

from __future__ import annotations

from datetime import datetime

from fulfill_carriers.adapter import CarrierEvent, ExceptionReason
from fulfill_carriers.status import TrackingStatus

CODE = "own_fleet"

STATUSES: dict[str, TrackingStatus] = {
    "route_started": TrackingStatus.OUT_FOR_DELIVERY,
    "arrived": TrackingStatus.OUT_FOR_DELIVERY,
    "delivered": TrackingStatus.DELIVERED,
    "failed": TrackingStatus.ATTEMPT_FAILED,
}
WORDS = {
    "route_started": "The van has left with the parcel",
    "arrived": "The driver is at the door",
    "delivered": "Delivered",
    "failed": "Delivery attempted",
}
# A driver's reason for a failed delivery, in their words, to what we do about it.
REASON_WORDS: tuple[tuple[tuple[str, ...], ExceptionReason], ...] = (
    (("not home", "nobody", "no one", "no answer", "absent"), ExceptionReason.NOT_HOME),
    (("address", "not found", "wrong", "access", "gate", "buzzer"), ExceptionReason.ADDRESS),
    (("refus",), ExceptionReason.REFUSED),
    (("damag", "broken"), ExceptionReason.DAMAGED),
    (("weather", "snow", "storm", "flood"), ExceptionReason.WEATHER),
)


def failure_reason(text: str | None) -> ExceptionReason:
    words = (text or "").lower()
    for keys, reason in REASON_WORDS:
        if any(k in words for k in keys):
            return reason
    return ExceptionReason.OTHER


def event(
    kind: str,
    tracking_number: str,
    at: datetime,
    event_id: str,
    *,
    reason: str | None = None,
    eta: datetime | None = None,
    location: str | None = None,
) -> CarrierEvent | None:
    """The tracking event of a driver report; None for reports that say nothing of a parcel
    (a position)."""
    status = STATUSES.get(kind)
    if status is None:
        return None
    return CarrierEvent(
        tracking_number=tracking_number,
        status=status,
        raw_code=kind,
        occurred_at=at,
        description=WORDS[kind] + (f": {reason}" if reason else ""),
        location=location,
        reason=failure_reason(reason) if kind == "failed" else None,
        eta=eta,
        event_id=event_id,
    )
