"""Placing an order: source it (the optimiser chooses the nodes), reserve its stock there, open
one fulfillment per node, and record it with the decision and why. Services never commit; the
request boundary does."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from geopy.geocoders.base import Geocoder
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from fulfill.auth import Caller
from fulfill.config import Settings
from fulfill.db import utcnow
from fulfill.dispatch import live
from fulfill.dispatch.live import Joining
from fulfill.dispatch.models import WaveStatus
from fulfill.dispatch.repository import Delivery
from fulfill.dispatch.waves import join_wave
from fulfill.errors import Conflict
from fulfill.fulfillers.service import request_fulfillment
from fulfill.ordering.cart import cart_lines, locate, source_and_reserve
from fulfill.orders import repository as repo
from fulfill.orders import timeline
from fulfill.orders.models import (
    Fulfillment,
    FulfillmentLine,
    FulfillmentStatus,
    Order,
    OrderLine,
    OrderStatus,
    ServiceLevel,
    new_id,
)
from fulfill.orders.public import order_public
from fulfill.orders.repository import record_event
from fulfill.orders.schemas import OrderCreate
from fulfill.outbox.service import enqueue
from fulfill.sourcing.plans import Shipment
from fulfill.sourcing.service import Ask, CartLine, Sourcing
from fulfill.tracking.shipping import request_shipment


def place_order(
    session: Session,
    caller: Caller,
    payload: OrderCreate,
    *,
    settings: Settings,
    geocoder: Geocoder,
    now: datetime | None = None,
) -> repo.OrderBundle:
    now = now or utcnow()
    _refuse_known_external_id(session, caller, payload.external_id)
    cart = cart_lines(session, [(ln.sku, ln.quantity) for ln in payload.lines], "lines[{}].sku")
    destination = locate(payload.destination, geocoder)
    level = payload.service_level
    order_id = new_id()
    ask = Ask(cart, destination, level, now, postal=payload.destination.address is not None)
    sourced = source_and_reserve(session, caller, order_id, ask, settings)
    promise = sourced.promise
    order = Order(
        id=order_id,
        storefront=caller.tenant,
        external_id=payload.external_id,
        status=OrderStatus.CONFIRMED,
        service_level=level,
        customer=payload.customer.model_dump(mode="json"),
        destination=payload.destination.model_dump(mode="json", exclude_none=True),
        dest_lat=destination[0],
        dest_lon=destination[1],
        promise_start=promise.start,
        promise_end=promise.end,
        order_by=promise.order_by,
        created_at=now,
        updated_at=now,
        sourcing=sourced.record(),
    )
    session.add(order)
    try:
        session.flush()
    except IntegrityError:  # a concurrent request with another key placed the same order
        raise Conflict(
            f"order {payload.external_id} exists", external_id=payload.external_id
        ) from None
    order_lines = [
        OrderLine(order_id=order_id, product_id=ln.product_id, sku=ln.sku, quantity=ln.quantity)
        for ln in cart
    ]
    created = record_event(session, order_id, "order.created", _created_event(sourced), at=now)
    fulfillments = open_fulfillments(session, order, sourced, cart, settings)
    timeline.publish(session, [(order_id, created.kind, created.data, now)])
    session.add_all(order_lines)
    bundle = repo.OrderBundle(order, order_lines, fulfillments, [created])
    enqueue(session, "order.created", order_public(bundle, settings).model_dump(mode="json"))
    session.flush()  # each table's rows in one batched INSERT
    return bundle


def open_fulfillments(
    session: Session,
    order: Order,
    sourced: Sourcing,
    cart: Sequence[CartLine],
    settings: Settings,
    *,
    promised: bool = True,
) -> list[tuple[Fulfillment, str, list[FulfillmentLine]]]:
    """One fulfillment per shipping node, in its wave if same day (and in that wave's live plan:
    a ``promised`` order whose place was taken meanwhile is refused), at the third party if
    there."""
    products = {ln.sku: ln.product_id for ln in cart}
    level = ServiceLevel(order.service_level)
    made = []
    for node, window, shipment in sourced.shipments():
        assert node.id is not None
        fulfillment = Fulfillment(
            order_id=order.id,
            node_id=node.id,
            status=FulfillmentStatus.PENDING,
            created_at=order.updated_at,  # the clock the order was placed (or re-sourced) by
        )
        wave = None
        if level is ServiceLevel.SAME_DAY:
            assert window.order_by is not None  # same day is promised from a wave cutoff
            wave = join_wave(session, fulfillment, node, window.order_by)
        session.add(fulfillment)
        session.flush()  # parents before children: no relationship()s to order the flush
        if wave is not None and wave.status == WaveStatus.OPEN:
            _join_live_plan(
                session,
                Joining(node, wave, _delivery(order, fulfillment, shipment)),
                settings,
                promised=promised,
            )
        if not node.node_kind.is_own:
            request_fulfillment(session, order, fulfillment, level)
        elif level is not ServiceLevel.SAME_DAY:
            request_shipment(session, fulfillment)  # by the parcel carrier
        lines = [
            FulfillmentLine(
                fulfillment_id=fulfillment.id, product_id=products[sku], sku=sku, quantity=n
            )
            for sku, n in sorted(shipment.units.items())
        ]
        session.add_all(lines)
        made.append((fulfillment, node.code, lines))
    return made


class SameDayTaken(Conflict):
    code = "same-day-taken"


def _join_live_plan(
    session: Session, joining: Joining, settings: Settings, *, promised: bool
) -> None:
    placed = live.join(session, joining, settings)
    if promised and settings.same_day_room_check and not placed.fits:
        raise SameDayTaken(
            f"the last same-day place at {joining.node.code} was taken meanwhile: {placed.reason}",
            node=joining.node.code,
        )


def _delivery(order: Order, fulfillment: Fulfillment, shipment: Shipment) -> Delivery:
    return Delivery(
        fulfillment_id=fulfillment.id,
        order_id=order.id,
        lat=order.dest_lat,
        lon=order.dest_lon,
        window_start=order.promise_start,
        window_end=order.promise_end,
        parcels=1,
        weight_kg=shipment.weight_kg,
    )


def _created_event(sourced: Sourcing) -> dict[str, Any]:
    record = sourced.record()
    nodes = [s["node"] for s in record["shipments"]]
    return {
        "nodes": nodes,
        "cost": record["cost"],
        "reason": "the cheapest way to keep the promise"
        + (f" ({record['method']}, optimal)" if record["optimal"] else f" ({record['method']})"),
    }


def _refuse_known_external_id(session: Session, caller: Caller, external_id: str) -> None:
    existing = repo.by_external_id(session, caller.tenant, external_id)
    if existing is not None:
        raise Conflict(
            f"order {external_id} exists as {existing.id}",
            external_id=external_id,
            order_id=existing.id,
        )
