"""Placing and cancelling orders. Services never commit; the request boundary does."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from geopy.geocoders.base import Geocoder
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from fulfill.auth import Caller
from fulfill.config import Settings
from fulfill.db import utcnow
from fulfill.dispatch.waves import join_wave
from fulfill.errors import Conflict, NotFound, OutOfStock
from fulfill.geocoding import geocode
from fulfill.inventory import service as inventory
from fulfill.inventory.service import InsufficientStock, StockLine
from fulfill.orders import repository as repo
from fulfill.orders.models import (
    Fulfillment,
    FulfillmentLine,
    FulfillmentStatus,
    Order,
    OrderEvent,
    OrderLine,
    OrderStatus,
    ServiceLevel,
    new_id,
)
from fulfill.orders.schemas import (
    FulfillmentPublic,
    LinePublic,
    OrderCreate,
    OrderDetail,
    OrderPublic,
    Promise,
    TimelineEntry,
)
from fulfill.outbox.service import enqueue
from fulfill.sourcing.service import Candidate, candidate_sources


def place_order(
    session: Session,
    caller: Caller,
    payload: OrderCreate,
    *,
    settings: Settings,
    geocoder: Geocoder,
    now: datetime | None = None,
) -> repo.OrderBundle:
    """Reserve the order's stock at the nearest node that can ship it all, and record it."""
    now = now or utcnow()
    _refuse_known_external_id(session, caller, payload.external_id)
    skus = [line.sku for line in payload.lines]
    inventory.refuse_duplicate_skus(skus, "lines[{}].sku")
    products = inventory.require_products(session, skus, "lines[{}].sku")
    lines = [
        StockLine(products[ln.sku].id, ln.sku, ln.quantity)  # type: ignore[arg-type]
        for ln in payload.lines
    ]
    destination = _locate(payload, geocoder)
    level = payload.service_level
    order_id = new_id()
    chosen = _reserve_at_nearest(
        session,
        caller,
        order_id,
        candidate_sources(session, lines, destination, level, now, settings),
        lines,
    )
    order = Order(
        id=order_id,
        storefront=caller.name,
        external_id=payload.external_id,
        status=OrderStatus.CONFIRMED,
        service_level=level,
        customer=payload.customer.model_dump(mode="json"),
        destination=payload.destination.model_dump(mode="json", exclude_none=True),
        dest_lat=destination[0],
        dest_lon=destination[1],
        promise_start=chosen.window.start,
        promise_end=chosen.window.end,
        order_by=chosen.window.order_by,
        created_at=now,
        updated_at=now,
    )
    session.add(order)
    try:
        session.flush()
    except IntegrityError:  # a concurrent request with another key placed the same order
        raise Conflict(
            f"order {payload.external_id} exists", external_id=payload.external_id
        ) from None
    assert chosen.node.id is not None
    fulfillment = Fulfillment(
        order_id=order_id, node_id=chosen.node.id, status=FulfillmentStatus.PENDING
    )
    if level is ServiceLevel.SAME_DAY:
        assert chosen.window.order_by is not None  # same day is promised from a wave cutoff
        join_wave(session, fulfillment, chosen.node, chosen.window.order_by)
    order_lines = [
        OrderLine(order_id=order_id, product_id=ln.product_id, sku=ln.sku, quantity=ln.quantity)
        for ln in lines
    ]
    fulfillment_lines = [
        FulfillmentLine(
            fulfillment_id=fulfillment.id,
            product_id=ln.product_id,
            sku=ln.sku,
            quantity=ln.quantity,
        )
        for ln in lines
    ]
    created = record_event(
        session,
        order_id,
        "order.created",
        {
            "node": chosen.node.code,
            "distance_km": round(chosen.distance_km, 3),
            "reason": "nearest own node that can ship the whole order",
        },
        at=now,
    )
    session.add(fulfillment)
    session.flush()  # parents before children: without relationship()s the flush cannot order them
    session.add_all([*order_lines, *fulfillment_lines])
    bundle = repo.OrderBundle(
        order, order_lines, [(fulfillment, chosen.node.code, fulfillment_lines)], [created]
    )
    enqueue(session, "order.created", order_public(bundle).model_dump(mode="json"))
    session.flush()  # each table's rows in one batched INSERT
    return bundle


def cancel_order(
    session: Session, caller: Caller, order_id: str, reason: str | None
) -> repo.OrderBundle:
    """Cancel and release the reservation. Cancelling a cancelled order changes nothing."""
    order = repo.get_visible(session, caller, order_id, for_update=True)
    if order is None:
        raise NotFound(f"no order {order_id}")
    if order.status == OrderStatus.CANCELLED:
        return repo.bundles(session, [order], with_events=True)[0]
    for fulfillment, f_lines in repo.fulfillments_of(session, order_id):
        if fulfillment.status != FulfillmentStatus.PENDING:
            raise Conflict(
                f"fulfillment {fulfillment.id} is {fulfillment.status} and cannot be cancelled"
            )
        inventory.release(
            session,
            fulfillment.node_id,
            [StockLine(fl.product_id, fl.sku, fl.quantity) for fl in f_lines],
            order_id,
            caller,
        )
        fulfillment.status = FulfillmentStatus.CANCELLED
    now = utcnow()
    order.status = OrderStatus.CANCELLED
    order.cancelled_at = now
    order.updated_at = now
    order.cancel_reason = reason
    record_event(session, order_id, "order.cancelled", {"reason": reason}, at=now)
    session.flush()
    bundle = repo.bundles(session, [order], with_events=True)[0]
    enqueue(session, "order.cancelled", order_public(bundle).model_dump(mode="json"))
    return bundle


def get_order(session: Session, caller: Caller, order_id: str) -> repo.OrderBundle:
    order = repo.get_visible(session, caller, order_id)
    if order is None:
        raise NotFound(f"no order {order_id}")
    return repo.bundles(session, [order], with_events=True)[0]


def record_event(
    session: Session, order_id: str, kind: str, data: dict[str, Any], at: datetime | None = None
) -> OrderEvent:
    event = OrderEvent(order_id=order_id, kind=kind, data=data, at=at or utcnow())
    session.add(event)
    return event


def order_public(bundle: repo.OrderBundle) -> OrderPublic:
    o = bundle.order
    return OrderPublic(
        id=o.id,
        external_id=o.external_id,
        status=OrderStatus(o.status),
        service_level=ServiceLevel(o.service_level),
        customer=o.customer,
        destination=o.destination | {"lat": o.dest_lat, "lon": o.dest_lon},
        promise=Promise(
            service_level=ServiceLevel(o.service_level),
            window_start=o.promise_start,
            window_end=o.promise_end,
            order_by=o.order_by,
        ),
        lines=[LinePublic(sku=ln.sku, quantity=ln.quantity) for ln in bundle.lines],
        fulfillments=[
            FulfillmentPublic(
                id=f.id,
                node=code,
                status=FulfillmentStatus(f.status),
                lines=[LinePublic(sku=fl.sku, quantity=fl.quantity) for fl in f_lines],
            )
            for f, code, f_lines in bundle.fulfillments
        ],
        created_at=o.created_at,
        updated_at=o.updated_at,
        cancelled_at=o.cancelled_at,
        cancel_reason=o.cancel_reason,
    )


def order_detail(bundle: repo.OrderBundle) -> OrderDetail:
    return OrderDetail(
        **order_public(bundle).model_dump(),
        timeline=[TimelineEntry(at=e.at, kind=e.kind, data=e.data) for e in bundle.events or []],
    )


def _refuse_known_external_id(session: Session, caller: Caller, external_id: str) -> None:
    existing = repo.by_external_id(session, caller.name, external_id)
    if existing is not None:
        raise Conflict(
            f"order {external_id} exists as {existing.id}",
            external_id=external_id,
            order_id=existing.id,
        )


def _locate(payload: OrderCreate, geocoder: Geocoder) -> tuple[float, float]:
    dest = payload.destination
    if dest.lat is not None and dest.lon is not None:
        return dest.lat, dest.lon
    assert dest.address is not None
    return geocode(geocoder, dest.address.one_line(), field="destination.address")


def _reserve_at_nearest(
    session: Session,
    caller: Caller,
    order_id: str,
    candidates: list[Candidate],
    lines: list[StockLine],
) -> Candidate:
    """Reserve at the first candidate that still has everything when we take it."""
    shortage: OutOfStock | None = None
    for candidate in candidates:
        savepoint = session.begin_nested()
        try:
            inventory.reserve(session, candidate.node.id, lines, order_id, caller)  # type: ignore[arg-type]
        except InsufficientStock as exc:
            savepoint.rollback()
            shortage = exc
            continue
        savepoint.commit()
        return candidate
    assert shortage is not None
    raise OutOfStock(
        shortage.extensions["sku"],
        shortage.extensions["requested"],
        shortage.extensions["available"],
    )
