"""Placing and cancelling orders. Services never commit; the request boundary does."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from geopy.geocoders.base import Geocoder
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from fulfill.auth import SERVICE, Caller
from fulfill.config import Settings
from fulfill.db import utcnow
from fulfill.dispatch.waves import join_wave
from fulfill.errors import Conflict, FulfillError, NotFound, OutOfStock
from fulfill.geocoding import geocode
from fulfill.inventory import service as inventory
from fulfill.inventory.repository import nodes_by_id
from fulfill.inventory.service import InsufficientStock, StockLine
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
from fulfill.orders.repository import record_event
from fulfill.orders.schemas import (
    Destination,
    FulfillmentPublic,
    LinePublic,
    OrderCreate,
    OrderDetail,
    OrderPublic,
    Promise,
    TimelineEntry,
)
from fulfill.outbox.service import enqueue
from fulfill.sourcing.service import CartLine, Sourcing, source_cart
from fulfill.third_party.service import request_cancel, request_fulfillment
from fulfill.tracking.shipping import request_shipment, stop_following

# Concurrent orders may take the units a decision counted on; source again this many times.
RESERVE_ATTEMPTS = 3


def place_order(
    session: Session,
    caller: Caller,
    payload: OrderCreate,
    *,
    settings: Settings,
    geocoder: Geocoder,
    now: datetime | None = None,
) -> repo.OrderBundle:
    """Source the order (the optimiser chooses the nodes), reserve its stock there, and record
    it with the decision and why."""
    now = now or utcnow()
    _refuse_known_external_id(session, caller, payload.external_id)
    cart = cart_lines(session, [(ln.sku, ln.quantity) for ln in payload.lines], "lines[{}].sku")
    destination = locate(payload.destination, geocoder)
    level = payload.service_level
    order_id = new_id()
    sourced = _source_and_reserve(
        session, caller, order_id, cart, destination, level, now, settings,
        postal=payload.destination.address is not None,
    )  # fmt: skip
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
    fulfillments = open_fulfillments(session, order, sourced, cart)
    timeline.publish(session, [(order_id, created.kind, created.data, now)])
    session.add_all(order_lines)
    bundle = repo.OrderBundle(order, order_lines, fulfillments, [created])
    enqueue(session, "order.created", order_public(bundle, settings).model_dump(mode="json"))
    session.flush()  # each table's rows in one batched INSERT
    return bundle


def cart_lines(session: Session, wanted: Sequence[tuple[str, int]], field: str) -> list[CartLine]:
    """The cart's lines with their products; unknown or repeated skus are a 422 naming the item."""
    skus = [sku for sku, _ in wanted]
    inventory.refuse_duplicate_skus(skus, field)
    products = inventory.require_products(session, skus, field)
    return [
        CartLine(products[sku].id, sku, quantity, products[sku].weight_kg)  # type: ignore[arg-type]
        for sku, quantity in wanted
    ]


def open_fulfillments(
    session: Session, order: Order, sourced: Sourcing, cart: Sequence[CartLine]
) -> list[tuple[Fulfillment, str, list[FulfillmentLine]]]:
    """One fulfillment per shipping node, in its wave if same day, at the third party if there."""
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
        if level is ServiceLevel.SAME_DAY:
            assert window.order_by is not None  # same day is promised from a wave cutoff
            join_wave(session, fulfillment, node, window.order_by)
        session.add(fulfillment)
        session.flush()  # parents before children: no relationship()s to order the flush
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


def _created_event(sourced: Sourcing) -> dict[str, Any]:
    record = sourced.record()
    nodes = [s["node"] for s in record["shipments"]]
    return {
        "nodes": nodes,
        "cost": record["cost"],
        "reason": "the cheapest way to keep the promise"
        + (f" ({record['method']}, optimal)" if record["optimal"] else f" ({record['method']})"),
    }


def resource_fulfillment(
    session: Session, fulfillment_id: str, settings: Settings, *, now: datetime
) -> None:
    """A node refused a fulfillment it had (its units are back): ship it from another node if
    one can, else leave a clear note on the order for a person. The order is never dropped."""
    fulfillment = session.get(Fulfillment, fulfillment_id)
    assert fulfillment is not None
    order = session.get(Order, fulfillment.order_id)
    assert order is not None
    if order.status == OrderStatus.CANCELLED:
        return
    refused = nodes_by_id(session, [fulfillment.node_id])[fulfillment.node_id]
    f_lines = next(lines for f, lines in repo.fulfillments_of(session, order.id)
                   if f.id == fulfillment_id)  # fmt: skip
    cart = cart_lines(session, [(fl.sku, fl.quantity) for fl in f_lines], "lines[{}].sku")
    try:
        sourced = _source_and_reserve(
            session, SERVICE, order.id, cart, (order.dest_lat, order.dest_lon),
            ServiceLevel(order.service_level), now, settings,
            postal=bool(order.destination.get("address")), refused_by=frozenset({refused.code}),
        )  # fmt: skip
    except FulfillError as exc:
        record_event(session, order.id, "fulfillment.needs_attention",
                     {"fulfillment": fulfillment_id, "reason": exc.message}, at=now)  # fmt: skip
        return
    order.updated_at = now
    made = open_fulfillments(session, order, sourced, cart)
    promise = sourced.promise
    record_event(session, order.id, "fulfillment.re_sourced", {
        "fulfillment": fulfillment_id, "from": refused.code,
        "to": [{"fulfillment": f.id, "node": code} for f, code, _ in made],
        "cost": sourced.record()["cost"],
        "promise_kept": promise.end <= order.promise_end,
    }, at=now)  # fmt: skip


def cancel_order(
    session: Session, caller: Caller, order_id: str, reason: str | None, settings: Settings
) -> repo.OrderBundle:
    """Cancel and release the reservation. Cancelling a cancelled order changes nothing."""
    order = repo.get_visible(session, caller, order_id, for_update=True)
    if order is None:
        raise NotFound(f"no order {order_id}")
    if order.status == OrderStatus.CANCELLED:
        return repo.bundles(session, [order], with_events=True)[0]
    parts = [
        (f, lines)
        for f, lines in repo.fulfillments_of(session, order_id)
        if f.status not in (FulfillmentStatus.CANCELLED, FulfillmentStatus.FAILED)
    ]
    nodes = nodes_by_id(session, {f.node_id for f, _ in parts})
    for fulfillment, f_lines in parts:
        if fulfillment.status != FulfillmentStatus.PENDING:
            raise Conflict(
                f"fulfillment {fulfillment.id} is {fulfillment.status} and cannot be cancelled"
            )
        if not nodes[fulfillment.node_id].node_kind.is_own:
            request_cancel(session, fulfillment)
        inventory.release(
            session,
            fulfillment.node_id,
            [StockLine(fl.product_id, fl.sku, fl.quantity) for fl in f_lines],
            order_id,
            caller,
        )
        fulfillment.status = FulfillmentStatus.CANCELLED
    now = utcnow()
    for fulfillment, _ in parts:
        stop_following(session, fulfillment, now)
    order.status = OrderStatus.CANCELLED
    order.cancelled_at = now
    order.updated_at = now
    order.cancel_reason = reason
    cancelled = record_event(session, order_id, "order.cancelled", {"reason": reason}, at=now)
    timeline.publish(session, [(order_id, cancelled.kind, cancelled.data, now)])
    session.flush()
    bundle = repo.bundles(session, [order], with_events=True)[0]
    enqueue(session, "order.cancelled", order_public(bundle, settings).model_dump(mode="json"))
    return bundle


def get_order(session: Session, caller: Caller, order_id: str) -> repo.OrderBundle:
    order = repo.get_visible(session, caller, order_id)
    if order is None:
        raise NotFound(f"no order {order_id}")
    return repo.bundles(session, [order], with_events=True)[0]


def order_public(bundle: repo.OrderBundle, settings: Settings) -> OrderPublic:
    o = bundle.order
    return OrderPublic(
        tracking_url=settings.tracking_url(o.tracking_token),
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


def order_detail(bundle: repo.OrderBundle, settings: Settings) -> OrderDetail:
    return OrderDetail(
        **order_public(bundle, settings).model_dump(),
        timeline=[TimelineEntry(at=e.at, kind=e.kind, data=e.data) for e in bundle.events or []],
        sourcing=bundle.order.sourcing,
    )


def _refuse_known_external_id(session: Session, caller: Caller, external_id: str) -> None:
    existing = repo.by_external_id(session, caller.tenant, external_id)
    if existing is not None:
        raise Conflict(
            f"order {external_id} exists as {existing.id}",
            external_id=external_id,
            order_id=existing.id,
        )


def locate(dest: Destination, geocoder: Geocoder) -> tuple[float, float]:
    if dest.lat is not None and dest.lon is not None:
        return dest.lat, dest.lon
    assert dest.address is not None
    return geocode(geocoder, dest.address.one_line(), field="destination.address")


def _source_and_reserve(
    session: Session,
    caller: Caller,
    order_id: str,
    cart: list[CartLine],
    destination: tuple[float, float],
    level: ServiceLevel,
    now: datetime,
    settings: Settings,
    *,
    postal: bool,
    refused_by: frozenset[str] = frozenset(),
) -> Sourcing:
    """Source the cart and reserve every shipment; if a concurrent order took units first,
    source again from what is left (a few times), then say what is short."""
    shortage: InsufficientStock | None = None
    for _ in range(RESERVE_ATTEMPTS):
        sourced = source_cart(session, cart, destination, level, now, settings, postal=postal,
                              refused_by=refused_by)  # fmt: skip
        savepoint = session.begin_nested()
        try:
            for node, _, shipment in sourced.shipments():
                lines = [ln for ln in cart if ln.sku in shipment.units]
                stock_lines = [
                    StockLine(ln.product_id, ln.sku, shipment.units[ln.sku]) for ln in lines
                ]
                inventory.reserve(session, node.id, stock_lines, order_id, caller)  # type: ignore[arg-type]
        except InsufficientStock as exc:
            savepoint.rollback()
            shortage = exc
            continue
        savepoint.commit()
        return sourced
    assert shortage is not None
    raise OutOfStock(
        shortage.extensions["sku"],
        shortage.extensions["requested"],
        shortage.extensions["available"],
    )
