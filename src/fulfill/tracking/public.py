"""Shipments as the API and the pages show them: status, ETA, events and open alerts."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session

from fulfill.tracking import repository
from fulfill.tracking.models import (
    Shipment,
    TrackingAlert,
    TrackingEvent,
)
from fulfill.tracking.schemas import ShipmentAlert, ShipmentEvent, ShipmentPublic


def shipments_public(session: Session, shipments: Sequence[Shipment]) -> list[ShipmentPublic]:
    """Each shipment with its timeline (by when things happened) and alerts, in two queries."""
    ids = [s.id for s in shipments]
    events, alerts = repository.events_of(session, ids), repository.alerts_of(session, ids)
    return [_public(s, events.get(s.id, []), alerts.get(s.id, [])) for s in shipments]


def shipments_of_order(session: Session, order_id: str) -> list[ShipmentPublic]:
    return shipments_public(session, repository.shipments_of(session, order_id))


def _public(
    shipment: Shipment, events: Sequence[TrackingEvent], alerts: Sequence[TrackingAlert]
) -> ShipmentPublic:
    return ShipmentPublic(
        id=shipment.id,
        order=shipment.order_id,
        fulfillment=shipment.fulfillment_id,
        carrier=shipment.carrier,
        tracking_number=shipment.tracking_number,
        status=shipment.status,
        status_at=shipment.status_at,
        reason=shipment.reason,
        eta=shipment.eta,
        eta_source=shipment.eta_source,
        promised_end=shipment.promised_end,
        late=shipment.late,
        last_scan_at=shipment.last_scan_at,
        timeline=[
            ShipmentEvent(
                status=e.status,
                code=e.raw_code,
                description=e.description,
                location=e.location,
                reason=e.reason,
                occurred_at=e.occurred_at,
                received_at=e.received_at,
                source=e.source,
                moved=e.moved,
            )
            for e in events
        ],
        alerts=[
            ShipmentAlert(kind=a.kind, detected_at=a.detected_at, details=a.details) for a in alerts
        ],
    )
