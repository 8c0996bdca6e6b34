"""Parcels from the shop's own nodes that do not go by van: a shipment is created with the
parcel carrier through the outbox (the fulfillment id is the carrier's reference, so a replay
finds the shipment made the first time) and followed from then on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from fulfill.config import Settings
from fulfill.db import engine_for, session_scope, utcnow
from fulfill.inventory.models import Product
from fulfill.orders.models import Fulfillment, FulfillmentLine, Order
from fulfill.orders.repository import record_event
from fulfill.outbox.models import OutboxEvent
from fulfill.outbox.service import Handler, enqueue
from fulfill.tracking import carriers, following, recording
from fulfill.tracking.models import Shipment
from fulfill_carriers import Carrier, CarrierEvent, CarrierRefused, Parcel, TrackingStatus

CREATE_TOPIC = "carrier.create"
CANCEL_TOPIC = "carrier.cancel"


def request_shipment(session: Session, fulfillment: Fulfillment) -> None:
    """In the order's transaction: the parcel carrier will be asked for a shipment."""
    enqueue(session, CREATE_TOPIC, {"fulfillment": fulfillment.id})


def stop_following(session: Session, fulfillment: Fulfillment, now: datetime) -> None:
    """In a cancellation's transaction: the fulfillment's parcels are no longer followed, and
    the parcel carrier is told (through the outbox) to cancel its shipment."""
    shipments = session.exec(
        select(Shipment).where(Shipment.fulfillment_id == fulfillment.id, col(Shipment.active))
    ).all()
    for shipment in shipments:
        event = CarrierEvent(
            shipment.tracking_number,
            TrackingStatus.CANCELLED,
            "cancelled",
            now,
            "The order was cancelled",
            event_id=f"cancel:{shipment.id}",
        )
        recording.record(
            session, recording.locked(session, shipment.id), [event], source="shop", now=now
        )
        if carriers.creates_shipments(shipment.carrier):
            enqueue(session, CANCEL_TOPIC, {"shipment": shipment.id, "carrier": shipment.carrier})


def handlers(settings: Settings) -> dict[str, list[Handler]]:
    if settings.parcel_carrier not in settings.carrier_options():
        return {}
    engine = engine_for(settings.resolved_database_url)

    def with_carrier(
        code_of: Callable[[OutboxEvent], str], action: Callable[[Carrier, OutboxEvent], object]
    ) -> Handler:
        def deliver(row: OutboxEvent) -> None:
            carrier = carriers.adapter(settings, code_of(row))
            try:
                action(carrier, row)
            finally:
                carrier.close()

        return deliver

    def parcel_carrier(row: OutboxEvent) -> str:
        return settings.parcel_carrier

    def shipments_carrier(row: OutboxEvent) -> str:
        if row.payload.get("carrier"):
            return str(row.payload["carrier"])
        with session_scope(engine) as session:  # an event stored before it named its carrier
            shipment = session.get(Shipment, row.payload["shipment"])
            return shipment.carrier if shipment is not None else settings.parcel_carrier

    return {
        CREATE_TOPIC: [
            with_carrier(
                parcel_carrier, lambda c, row: create(engine, row.payload["fulfillment"], c)
            )
        ],
        CANCEL_TOPIC: [
            with_carrier(
                shipments_carrier, lambda c, row: cancel(engine, row.payload["shipment"], c)
            )
        ],
    }


def cancel(engine: Engine, shipment_id: str, carrier: Carrier) -> None:
    """Cancel the parcel with the carrier; one it already picked up stays with it, and the
    order's timeline says so for a person to follow."""
    with session_scope(engine) as session:
        shipment = session.get(Shipment, shipment_id)
        if shipment is None:
            return
        number, order_id = shipment.tracking_number, shipment.order_id
    try:
        carrier.cancel(number)
    except CarrierRefused as exc:
        with session_scope(engine) as session:
            record_event(
                session,
                order_id,
                "shipment.cancel_refused",
                {"shipment": shipment_id, "reason": str(exc)},
            )
            session.commit()


def create(engine: Engine, fulfillment_id: str, carrier: Carrier) -> Shipment | None:
    """The fulfillment's shipment with the carrier, created once; None if it no longer ships
    (cancelled before the carrier was asked)."""
    with session_scope(engine) as session:
        existing = session.exec(
            select(Shipment).where(
                Shipment.fulfillment_id == fulfillment_id, Shipment.carrier == carrier.code
            )
        ).first()
        if existing is not None:
            return existing
        fulfillment = session.get(Fulfillment, fulfillment_id)
        order = session.get(Order, fulfillment.order_id) if fulfillment else None
        if fulfillment is None or order is None or fulfillment.status == "cancelled":
            return None
        parcel = _parcel(session, fulfillment, order)
    made = carrier.create_shipment(parcel)  # idempotent at the carrier by the reference
    with session_scope(engine) as session:
        fulfillment = session.get(Fulfillment, fulfillment_id)
        assert fulfillment is not None
        shipment = following.follow(
            session, fulfillment, carrier.code, made.tracking_number, utcnow(), eta=made.eta
        )
        session.commit()
        return shipment


def _parcel(session: Session, fulfillment: Fulfillment, order: Order) -> Parcel:
    weight = session.exec(
        select(func.coalesce(func.sum(FulfillmentLine.quantity * Product.weight_kg), 0.0))
        .join(Product, col(Product.id) == FulfillmentLine.product_id)
        .where(FulfillmentLine.fulfillment_id == fulfillment.id)
    ).one()
    address = order.destination.get("address") if isinstance(order.destination, dict) else None
    return Parcel(
        reference=fulfillment.id,
        name=str(order.customer.get("name", "")),
        lat=order.dest_lat,
        lon=order.dest_lon,
        weight_kg=max(0.01, float(weight)),
        service=order.service_level,
        address=address,
        phone=order.customer.get("phone"),
    )
