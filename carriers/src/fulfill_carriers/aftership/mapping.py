"""AfterShip's tags, sub-statuses and checkpoints read into the normalised vocabulary, the
tag kept as each event's code."""

from __future__ import annotations

from datetime import UTC, date, datetime
from datetime import time as clock
from typing import Any

from fulfill_carriers.adapter import CarrierEvent
from fulfill_carriers.adapter import ExceptionReason as R
from fulfill_carriers.status import TrackingStatus as S

TAGS: dict[str, S] = {
    "Pending": S.PENDING,
    "InfoReceived": S.INFO_RECEIVED,
    "InTransit": S.IN_TRANSIT,
    "OutForDelivery": S.OUT_FOR_DELIVERY,
    "AttemptFail": S.ATTEMPT_FAILED,
    "Delivered": S.DELIVERED,
    "AvailableForPickup": S.AVAILABLE_FOR_PICKUP,
    "Exception": S.EXCEPTION,
    "Expired": S.EXPIRED,
}
# Sub-statuses that say more than their tag: another status, or why the parcel is in trouble.
SUBTAGS: dict[str, tuple[S, R | None]] = {
    "InTransit_002": (S.PICKED_UP, None),  # acceptance scan
    "AttemptFail_001": (S.ATTEMPT_FAILED, R.NOT_HOME),
    "AttemptFail_002": (S.ATTEMPT_FAILED, R.NOT_HOME),
    "AttemptFail_003": (S.ATTEMPT_FAILED, R.NOT_HOME),  # business closed
    "Exception_001": (S.EXCEPTION, R.OTHER),
    "Exception_002": (S.EXCEPTION, R.ADDRESS),  # customer moved
    "Exception_003": (S.EXCEPTION, R.REFUSED),
    "Exception_004": (S.EXCEPTION, R.CUSTOMS),
    "Exception_005": (S.EXCEPTION, R.DELAYED),  # external factors
    "Exception_006": (S.EXCEPTION, R.HELD),  # held for payment
    "Exception_007": (S.EXCEPTION, R.ADDRESS),
    "Exception_008": (S.EXCEPTION, R.OTHER),  # pickup missed
    "Exception_009": (S.EXCEPTION, R.OTHER),  # rejected by the carrier
    "Exception_010": (S.RETURNING, None),
    "Exception_011": (S.RETURNED, None),
    "Exception_012": (S.EXCEPTION, R.DAMAGED),
    "Exception_013": (S.EXCEPTION, R.LOST),
    "Exception_016": (S.EXCEPTION, R.DELAYED),  # processing delay
    "Exception_017": (S.EXCEPTION, R.WEATHER),
    "Exception_018": (S.EXCEPTION, R.CUSTOMS),  # missing documents
    "Exception_019": (S.EXCEPTION, R.DELAYED),  # late flight
    "Exception_020": (S.CANCELLED, None),
    "Exception_021": (S.EXCEPTION, R.LOST),  # disposed of
}


def normalise(tag: str | None, subtag: str | None) -> tuple[S, R | None]:
    """The status and reason of an AfterShip tag and sub-status; an unknown Exception sub-status
    is a generic exception, an unknown tag ``unknown``."""
    if subtag in SUBTAGS:
        return SUBTAGS[subtag]
    status = TAGS.get(tag or "", S.UNKNOWN)
    return status, (R.OTHER if status is S.EXCEPTION else None)


def events(tracking: dict[str, Any]) -> list[CarrierEvent]:
    number = str(tracking["tracking_number"])
    eta = _estimate(tracking)
    slug = tracking.get("slug")
    events = []
    for point in tracking.get("checkpoints") or []:
        status, reason = normalise(point.get("tag"), point.get("subtag"))
        at = _when(point.get("checkpoint_time"))
        if at is None:
            continue
        events.append(
            CarrierEvent(
                tracking_number=number,
                status=status,
                raw_code=str(point.get("subtag") or point.get("tag") or ""),
                occurred_at=at,
                description=str(point.get("message") or point.get("subtag_message") or ""),
                location=_place(point),
                reason=reason,
                eta=eta,
            )
        )
    if not events:  # a tracking without checkpoints still tells its current status
        status, reason = normalise(tracking.get("tag"), tracking.get("subtag"))
        at = _when(tracking.get("updated_at")) or datetime.now(UTC)
        events.append(
            CarrierEvent(
                number,
                status,
                str(tracking.get("subtag") or tracking.get("tag") or ""),
                at,
                str(tracking.get("subtag_message") or slug or ""),
                reason=reason,
                eta=eta,
            )
        )
    return events


def _estimate(tracking: dict[str, Any]) -> datetime | None:
    """The latest estimate of delivery among the legacy and the dated versions' fields."""
    for key in (
        "latest_estimated_delivery",
        "custom_estimated_delivery_date",
        "aftership_estimated_delivery_date",
        "courier_estimated_delivery_date",
        "expected_delivery",
    ):
        value = tracking.get(key)
        if isinstance(value, dict):
            value = (
                value.get("datetime_max")
                or value.get("datetime")
                or value.get("estimated_delivery_date_max")
                or value.get("estimated_delivery_date")
            )
        found = _when(value)
        if found is not None:
            return found
    return None


def _when(value: object) -> datetime | None:
    """A time AfterShip gives: with its offset, or a date alone (taken at its midday, UTC)."""
    if not value or not isinstance(value, str):
        return None
    if len(value) == 10:
        return datetime.combine(date.fromisoformat(value), clock(12), tzinfo=UTC)
    at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _place(point: dict[str, Any]) -> str | None:
    parts = [
        point.get("city"),
        point.get("state"),
        point.get("country_region") or point.get("country_iso3"),
    ]
    text = ", ".join(str(p) for p in parts if p)
    return text or point.get("location") or None
