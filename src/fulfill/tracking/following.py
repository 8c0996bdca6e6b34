"""Which parcels are followed: a shipment opened for a carrier's tracking number or for a van's
stop, and what the vans tell about their own stops."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from fulfill.orders.models import Fulfillment, Order
from fulfill.orders.repository import record_event
from fulfill.tracking.models import (
    Shipment,
)
from fulfill.tracking.recording import Known, Recorded, locked, record, refresh_eta
from fulfill.tracking.repository import shipment_by_number
from fulfill_carriers import OWN_FLEET, CarrierEvent
from fulfill_carriers import TrackingStatus as S


def follow(
    session: Session,
    fulfillment: Fulfillment,
    carrier: str,
    tracking_number: str,
    now: datetime,
    *,
    tracking_ref: str | None = None,
    eta: datetime | None = None,
    eta_source: str = "carrier",
) -> Shipment:
    """The shipment of ``fulfillment`` with this carrier and tracking number, created once."""
    existing = shipment_by_number(session, carrier, tracking_number)
    if existing is not None:
        return existing
    order = session.get(Order, fulfillment.order_id)
    assert order is not None
    own = carrier == OWN_FLEET  # reported by drivers, never polled
    shipment = Shipment(
        fulfillment_id=fulfillment.id,
        order_id=fulfillment.order_id,
        carrier=carrier,
        tracking_number=tracking_number,
        tracking_ref=tracking_ref or tracking_number,
        status=S.PENDING,
        status_at=now,
        promised_end=order.promise_end,
        eta=eta,
        eta_source=eta_source if eta else None,
        next_poll_at=None if own else now,
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(shipment)
    except IntegrityError:  # followed concurrently by another worker: theirs stands
        found = shipment_by_number(session, carrier, tracking_number)
        assert found is not None
        return found
    record_event(
        session,
        order.id,
        "shipment.followed",
        {"shipment": shipment.id, "carrier": carrier, "tracking_number": tracking_number},
        at=now,
    )
    return shipment


def follow_own_fleet(
    session: Session, fulfillment_id: str, eta: datetime | None, now: datetime
) -> Shipment | None:
    """The own fleet's shipment of a planned stop (its tracking number is the fulfillment's
    id), with the plan's ETA."""
    fulfillment = session.get(Fulfillment, fulfillment_id)
    if fulfillment is None:
        return None
    shipment = follow(
        session, fulfillment, OWN_FLEET, fulfillment_id, now, eta=eta, eta_source="plan"
    )
    if eta is not None and shipment.eta != eta:
        shipment.eta, shipment.eta_source = eta, "plan"
    refresh_eta(session, shipment, now)
    return shipment


def driver_report(
    session: Session, fulfillment_id: str, event: CarrierEvent, now: datetime
) -> Recorded | None:
    """A driver's report about a parcel of the own fleet, as a tracking event."""
    shipment = shipment_by_number(session, OWN_FLEET, fulfillment_id) or follow_own_fleet(
        session, fulfillment_id, None, now
    )
    if shipment is None:
        return None
    return record(session, locked(session, shipment.id), [event], source="driver", now=now)


def set_plan_etas(session: Session, etas: Mapping[str, datetime], now: datetime) -> list[str]:
    """The own fleet's ETAs from the route plan (fulfillment id -> ETA), read and written for
    the whole route at once: this runs on every driver report."""
    if not etas:
        return []
    shipments = session.exec(
        select(Shipment).where(
            Shipment.carrier == OWN_FLEET,
            col(Shipment.tracking_number).in_(etas),
            col(Shipment.active),
        )
    ).all()
    known = Known.of(session, {}, shipments)
    raised = []
    for shipment in shipments:
        shipment.eta, shipment.eta_source = etas[shipment.tracking_number], "plan"
        raised += refresh_eta(session, shipment, now, known)
    known.write(session)
    return raised
