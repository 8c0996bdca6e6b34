"""The tracking domain's queries: shipments by order or by carrier number, and their events and
alerts in the order they happened."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from fulfill.tracking.models import Shipment, TrackingAlert, TrackingEvent


def shipments_of(session: Session, order_id: str) -> Sequence[Shipment]:
    """An order's shipments, the first followed first."""
    return session.exec(
        select(Shipment).where(Shipment.order_id == order_id).order_by(col(Shipment.created_at))
    ).all()


def shipment_by_number(session: Session, carrier: str, tracking_number: str) -> Shipment | None:
    return session.exec(
        select(Shipment).where(
            Shipment.carrier == carrier, Shipment.tracking_number == tracking_number
        )
    ).first()


def events_of(
    session: Session, shipment_ids: Sequence[str], *, moved_only: bool = False
) -> dict[str, list[TrackingEvent]]:
    """Each shipment's events by when they happened; ``moved_only``: those that moved its status
    (what a customer is shown), not every scan kept."""
    found: dict[str, list[TrackingEvent]] = {}
    if not shipment_ids:
        return found
    query = select(TrackingEvent).where(col(TrackingEvent.shipment_id).in_(shipment_ids))
    if moved_only:
        query = query.where(col(TrackingEvent.moved))
    rows = session.exec(query.order_by(col(TrackingEvent.occurred_at), col(TrackingEvent.id)))
    for row in rows:
        found.setdefault(row.shipment_id, []).append(row)
    return found


def alerts_of(session: Session, shipment_ids: Sequence[str]) -> dict[str, list[TrackingAlert]]:
    """Each shipment's alerts, in the order they were detected."""
    found: dict[str, list[TrackingAlert]] = {}
    if not shipment_ids:
        return found
    rows = session.exec(
        select(TrackingAlert)
        .where(col(TrackingAlert.shipment_id).in_(shipment_ids))
        .order_by(col(TrackingAlert.detected_at), col(TrackingAlert.id))
    )
    for row in rows:
        found.setdefault(row.shipment_id, []).append(row)
    return found
