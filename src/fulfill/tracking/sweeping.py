"""Shipments that went quiet: how often each status is polled, ``stalled`` when a status lasts
longer than it should, ``lost`` when a parcel on its way is not scanned for a week."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from fulfill.config import Settings
from fulfill.tracking.models import (
    AlertKind,
    Shipment,
)
from fulfill.tracking.recording import HOUR, ON_ITS_WAY, Known, alert, refresh_eta
from fulfill_carriers import TrackingStatus as S

# How often a shipment is polled in each status: often near the door, rarely in transit.
POLL_EVERY: dict[S, timedelta] = {
    S.PENDING: 4 * HOUR,
    S.INFO_RECEIVED: 4 * HOUR,
    S.PICKED_UP: 2 * HOUR,
    S.IN_TRANSIT: 2 * HOUR,
    S.OUT_FOR_DELIVERY: HOUR / 6,
    S.ATTEMPT_FAILED: HOUR / 2,
    S.EXCEPTION: HOUR / 2,
    S.AVAILABLE_FOR_PICKUP: 6 * HOUR,
    S.RETURNING: 12 * HOUR,
    S.UNKNOWN: 2 * HOUR,
}


# A status that lasts longer than this without a scan is stalled.
STALLED_AFTER: dict[S, timedelta] = {
    S.PENDING: 48 * HOUR,
    S.INFO_RECEIVED: 48 * HOUR,
    S.PICKED_UP: 36 * HOUR,
    S.IN_TRANSIT: 48 * HOUR,
    S.OUT_FOR_DELIVERY: 12 * HOUR,
    S.ATTEMPT_FAILED: 36 * HOUR,
    S.EXCEPTION: 72 * HOUR,
    S.AVAILABLE_FOR_PICKUP: 8 * 24 * HOUR,
    S.RETURNING: 10 * 24 * HOUR,
    S.UNKNOWN: 48 * HOUR,
}


# A parcel on its way that nobody has scanned for this long is lost.
LOST_AFTER = 7 * 24 * HOUR


def next_poll(shipment: Shipment, now: datetime, settings: Settings) -> datetime | None:
    if not shipment.active:
        return None
    every = POLL_EVERY.get(S(shipment.status), 2 * HOUR) * settings.tracking_poll_scale
    return now + every


def sweep(session: Session, now: datetime, limit: int = 5000) -> list[str]:
    """Alerts for shipments that went quiet, and ETAs that passed without a delivery: the
    longest unchecked first, so every active shipment has its turn however many there are."""
    rows = session.exec(
        select(Shipment)
        .where(col(Shipment.active))
        .order_by(col(Shipment.checked_at).is_not(None), col(Shipment.checked_at))
        .limit(limit)
        .with_for_update(skip_locked=True)  # a shipment being recorded is swept next time
    ).all()
    known = Known.of(session, {}, rows)
    raised = []
    for shipment in rows:
        shipment.checked_at = now
        raised += _quiet(session, shipment, now, known)
        raised += refresh_eta(session, shipment, now, known)
    known.write(session)
    return raised


def _quiet(session: Session, shipment: Shipment, now: datetime, known: Known) -> list[str]:
    status = S(shipment.status)
    last = shipment.last_scan_at or shipment.created_at
    silent = now - last
    details = {
        "status": status.value,
        "last_scan_at": last.isoformat(),
        "silent_hours": round(silent / HOUR, 1),
    }
    raised = []
    if silent > STALLED_AFTER.get(status, 48 * HOUR):
        raised.append(alert(session, shipment, AlertKind.STALLED, now, details, known))
    if status in ON_ITS_WAY and silent > LOST_AFTER:
        raised.append(alert(session, shipment, AlertKind.LOST, now, details, known))
    return [kind for kind in raised if kind]
