"""The sandbox carrier's codes and answers read into the normalised vocabulary, its codes kept."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fulfill_carriers.adapter import CarrierEvent, ExceptionReason
from fulfill_carriers.errors import CarrierUnavailable
from fulfill_carriers.status import TrackingStatus as S

STATUSES: dict[str, tuple[S, ExceptionReason | None]] = {
    "CR": (S.INFO_RECEIVED, None),
    "PU": (S.PICKED_UP, None),
    "AF": (S.IN_TRANSIT, None),
    "DF": (S.IN_TRANSIT, None),
    "OD": (S.OUT_FOR_DELIVERY, None),
    "DL": (S.DELIVERED, None),
    "NH": (S.ATTEMPT_FAILED, ExceptionReason.NOT_HOME),
    "HP": (S.AVAILABLE_FOR_PICKUP, None),
    "PK": (S.DELIVERED, None),
    "WX": (S.EXCEPTION, ExceptionReason.WEATHER),
    "DM": (S.EXCEPTION, ExceptionReason.DAMAGED),
    "AD": (S.EXCEPTION, ExceptionReason.ADDRESS),
    "RF": (S.EXCEPTION, ExceptionReason.REFUSED),
    "RS": (S.RETURNING, None),
    "RT": (S.RETURNED, None),
    "CX": (S.CANCELLED, None),
}


def event(e: dict[str, Any]) -> CarrierEvent:
    try:
        code = str(e["code"])
        status, reason = STATUSES.get(code, (S.UNKNOWN, None))
        at = when(e["at"])
        if at is None:
            raise ValueError("an event without its time")
        return CarrierEvent(
            tracking_number=str(e["tracking_number"]),
            status=status,
            raw_code=code,
            occurred_at=at,
            description=str(e.get("description") or ""),
            location=e.get("location"),
            reason=reason,
            eta=when(e.get("eta")),
            event_id=str(e["id"]) if e.get("id") else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CarrierUnavailable(f"an event that is not the carrier's: {e!r:.200}") from exc


def text(answer: dict[str, Any], key: str) -> str:
    value = answer.get(key)
    if not isinstance(value, str) or not value:
        raise CarrierUnavailable(f"answer without {key}")
    return value


def when(value: object) -> datetime | None:
    if not value:
        return None
    at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if at.tzinfo is None:
        raise ValueError(f"{value} has no UTC offset")
    return at
