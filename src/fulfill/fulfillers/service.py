"""Fulfillments shipped by a third party (Amazon MCF): ask, cancel, follow, and sync its stock.

An order sourced there gets a ``ThirdPartyOrder`` and an outbox event in the order's own
transaction; the outbox relay (a Celery task, retried with backoff) then creates the order at
the third party. The seller fulfillment order id is the idempotency key, so a replayed relay
finds the order it created before. A third party that does not answer is marked down, and
sourcing avoids it until it is retried; one that refuses an order gets the order's units back
and the fulfillment is sourced again elsewhere if it can be.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from fulfill.auth import SERVICE
from fulfill.config import Settings
from fulfill.db import utcnow
from fulfill.errors import Conflict
from fulfill.fulfillers.models import ThirdPartyHealth, ThirdPartyOrder, ThirdPartyOrderStatus
from fulfill.inventory.models import MovementReason, Node, NodeKind, Product
from fulfill.inventory.service import StockLine, locked_stock, record_movement, release
from fulfill.orders.models import (
    Fulfillment,
    FulfillmentLine,
    FulfillmentStatus,
    Order,
    ServiceLevel,
)
from fulfill.orders.repository import record_event
from fulfill.outbox.service import enqueue
from fulfill.tracking import following
from fulfill_carriers import (
    NOT_CANCELLABLE,
    Address,
    Item,
    McfCarrier,
    McfClient,
    McfError,
    McfRefused,
    McfUnavailable,
    NewOrder,
    Package,
    client_from_options,
)

CREATE_TOPIC = "third_party.create"
CANCEL_TOPIC = "third_party.cancel"
SPEED = {ServiceLevel.NEXT_DAY: "Priority", ServiceLevel.STANDARD: "Standard"}

ClientFactory = Callable[[], McfClient]


def client_factory(settings: Settings) -> ClientFactory:
    def make() -> McfClient:
        options = settings.carrier_options().get(McfCarrier.code)
        if options is None:
            raise McfUnavailable("no third-party API is configured (FULFILL_MCF_URL)")
        return client_from_options(options)

    return make


def request_fulfillment(
    session: Session, order: Order, fulfillment: Fulfillment, level: ServiceLevel
) -> ThirdPartyOrder:
    """Record the order to place at the third party, and ask for it through the outbox."""
    row = ThirdPartyOrder(
        fulfillment_id=fulfillment.id,
        order_id=order.id,
        node_id=fulfillment.node_id,
        seller_order_id=fulfillment.id,
        speed=SPEED[level],
    )
    session.add(row)
    enqueue(session, CREATE_TOPIC, {"seller_order_id": row.seller_order_id})
    return row


def request_cancel(session: Session, fulfillment: Fulfillment) -> None:
    """Ask the third party to cancel; refused (409) once it has started picking."""
    row = session.exec(
        select(ThirdPartyOrder).where(ThirdPartyOrder.fulfillment_id == fulfillment.id)
    ).one()
    if row.remote_status and row.remote_status.lower() in NOT_CANCELLABLE:
        raise Conflict(
            f"the third party is already {row.remote_status} with fulfillment {fulfillment.id}"
        )
    if row.status in (ThirdPartyOrderStatus.REQUESTED, ThirdPartyOrderStatus.CREATED):
        row.status = ThirdPartyOrderStatus.CANCEL_REQUESTED
        row.updated_at = utcnow()
        enqueue(session, CANCEL_TOPIC, {"seller_order_id": row.seller_order_id})


@dataclass(frozen=True)
class Outcome:
    seller_order_id: str
    fulfillment_id: str
    status: str
    refused: bool = False


def create(session: Session, seller_order_id: str, make_client: ClientFactory) -> Outcome:
    """Create the order at the third party unless done; raises ``McfUnavailable`` to retry."""
    row = _locked(session, seller_order_id)
    if row.status != ThirdPartyOrderStatus.REQUESTED:
        return Outcome(seller_order_id, row.fulfillment_id, row.status)
    order = session.get(Order, row.order_id)
    assert order is not None
    new = _new_order(session, row, order)
    try:
        with make_client() as client:
            state = client.ensure_created(new)
    except McfRefused as exc:
        mark_health(session, row.node_id, None)
        refuse(session, row, str(exc))
        return Outcome(seller_order_id, row.fulfillment_id, row.status, refused=True)
    except McfError as exc:
        mark_health(session, row.node_id, str(exc))
        raise
    mark_health(session, row.node_id, None)
    row.status = ThirdPartyOrderStatus.CREATED
    row.remote_status = state.status
    row.last_error = None
    row.updated_at = utcnow()
    record_event(
        session,
        row.order_id,
        "fulfillment.sent_to_third_party",
        {
            "fulfillment": row.fulfillment_id,
            "seller_order_id": row.seller_order_id,
            "speed": row.speed,
            "status": state.status,
        },
    )
    return Outcome(seller_order_id, row.fulfillment_id, row.status)


def cancel(session: Session, seller_order_id: str, make_client: ClientFactory) -> Outcome:
    row = _locked(session, seller_order_id)
    if row.status != ThirdPartyOrderStatus.CANCEL_REQUESTED:
        return Outcome(seller_order_id, row.fulfillment_id, row.status)
    try:
        with make_client() as client:
            state = client.get(seller_order_id)
            if state is not None and state.status.lower() != "cancelled":
                client.cancel(seller_order_id)
    except McfRefused as exc:
        row.last_error = str(exc)[:1000]
        record_event(
            session,
            row.order_id,
            "fulfillment.cancel_refused_by_third_party",
            {"fulfillment": row.fulfillment_id, "reason": str(exc)},
        )
        row.status = ThirdPartyOrderStatus.FAILED
        return Outcome(seller_order_id, row.fulfillment_id, row.status, refused=True)
    except McfError as exc:
        mark_health(session, row.node_id, str(exc))
        raise
    mark_health(session, row.node_id, None)
    row.status = ThirdPartyOrderStatus.CANCELLED
    row.remote_status = "Cancelled"
    row.updated_at = utcnow()
    return Outcome(seller_order_id, row.fulfillment_id, row.status)


def refuse(session: Session, row: ThirdPartyOrder, reason: str) -> None:
    """The third party will not ship it: its units go back, and the timeline says why."""
    fulfillment = session.get(Fulfillment, row.fulfillment_id)
    assert fulfillment is not None
    row.status = ThirdPartyOrderStatus.FAILED
    row.last_error = reason[:1000]
    row.updated_at = utcnow()
    if fulfillment.status == FulfillmentStatus.PENDING:
        _release(session, fulfillment)
        fulfillment.status = FulfillmentStatus.FAILED
    record_event(
        session,
        row.order_id,
        "fulfillment.refused_by_third_party",
        {"fulfillment": row.fulfillment_id, "reason": reason},
    )


def _release(session: Session, fulfillment: Fulfillment) -> None:
    lines = session.exec(
        select(FulfillmentLine).where(FulfillmentLine.fulfillment_id == fulfillment.id)
    ).all()
    release(
        session,
        fulfillment.node_id,
        [StockLine(fl.product_id, fl.sku, fl.quantity) for fl in lines],
        fulfillment.order_id,
        SERVICE,
    )


def follow(session: Session, node: Node, client: McfClient, now: datetime) -> int:
    """Read the state of every open order at the third party; a shipped one leaves our stock
    and hands the fulfillment to the carrier. Returns how many changed."""
    rows = session.exec(
        select(ThirdPartyOrder)
        .where(
            ThirdPartyOrder.node_id == node.id,
            ThirdPartyOrder.status == ThirdPartyOrderStatus.CREATED,
        )
        .order_by(col(ThirdPartyOrder.id))
        .with_for_update()
    ).all()
    changed = 0
    for row in rows:
        state = client.get(row.seller_order_id)
        if state is None or state.status == row.remote_status:
            continue
        changed += 1
        row.remote_status = state.status
        row.updated_at = now
        row.packages = [_package(p) for p in state.packages]
        if state.status.lower() in ("complete", "completepartialled") and state.packages:
            _shipped(session, row, now)
            _follow_packages(session, row, state.packages, now)
        elif state.status.lower() in ("cancelled", "unfulfillable", "invalid"):
            refuse(session, row, f"the third party marked it {state.status}")
    return changed


def _shipped(session: Session, row: ThirdPartyOrder, now: datetime) -> None:
    fulfillment = session.get(Fulfillment, row.fulfillment_id)
    assert fulfillment is not None
    row.status = ThirdPartyOrderStatus.SHIPPED
    if fulfillment.status != FulfillmentStatus.PENDING:
        return
    lines = session.exec(
        select(FulfillmentLine).where(FulfillmentLine.fulfillment_id == fulfillment.id)
    ).all()
    for line in sorted(lines, key=lambda fl: fl.sku):
        stock = locked_stock(session, fulfillment.node_id, line.product_id)
        stock.reserved -= line.quantity
        stock.on_hand -= line.quantity
        stock.updated_at = now
        record_movement(
            session,
            stock,
            MovementReason.SHIPMENT,
            on_hand_delta=-line.quantity,
            reserved_delta=-line.quantity,
            order_id=fulfillment.order_id,
            note="shipped by the third party",
        )
    fulfillment.status = FulfillmentStatus.HANDED_TO_CARRIER
    record_event(
        session,
        row.order_id,
        "fulfillment.handed_to_carrier",
        {"fulfillment": fulfillment.id, "packages": row.packages},
        at=now,
    )


def _follow_packages(
    session: Session, row: ThirdPartyOrder, packages: Sequence[Package], now: datetime
) -> None:
    """Each package the third party shipped is followed by its tracking, polled by number."""
    fulfillment = session.get(Fulfillment, row.fulfillment_id)
    assert fulfillment is not None
    for package in packages:
        if package.tracking_number and package.package_number is not None:
            following.follow(
                session,
                fulfillment,
                McfCarrier.code,
                package.tracking_number,
                now,
                tracking_ref=str(package.package_number),
                eta=package.estimated_arrival,
            )


def sync_inventory(session: Session, node: Node, client: McfClient, now: datetime) -> int:
    """Set the node's on_hand from the third party's fulfillable units, plus the units of our
    orders it holds for us already: what is available here is then what it can still ship
    less what we have promised and not yet sent. Returns how many skus changed."""
    assert node.id is not None
    products = {p.sku: p for p in session.exec(select(Product)).all()}
    counted = client.inventory(products)
    held = _held_for_us(session, node.id)
    changed = 0
    for sku in sorted(counted):
        product = products.get(sku)
        if product is None or product.id is None:
            continue
        stock = locked_stock(session, node.id, product.id)
        target = counted[sku] + held.get(product.id, 0)
        note = "synced from the third party's fulfillable units"
        if target < stock.reserved:
            note += f" (it counts {target}, fewer than the {stock.reserved} we reserved)"
            target = stock.reserved
        if target != stock.on_hand:
            delta = target - stock.on_hand
            stock.on_hand = target
            stock.updated_at = now
            record_movement(session, stock, MovementReason.COUNT, on_hand_delta=delta, note=note)
            changed += 1
    health = _health(session, node.id)
    health.synced_at = now
    return changed


def _held_for_us(session: Session, node_id: int) -> dict[int, int]:
    """Units of our orders the third party has accepted and not shipped: out of its count."""
    rows = session.exec(
        select(FulfillmentLine.product_id, FulfillmentLine.quantity)
        .join(
            ThirdPartyOrder, col(ThirdPartyOrder.fulfillment_id) == FulfillmentLine.fulfillment_id
        )
        .where(
            ThirdPartyOrder.node_id == node_id,
            col(ThirdPartyOrder.status).in_(
                [ThirdPartyOrderStatus.CREATED, ThirdPartyOrderStatus.CANCEL_REQUESTED]
            ),
        )
    ).all()
    held: dict[int, int] = {}
    for product_id, quantity in rows:
        held[product_id] = held.get(product_id, 0) + quantity
    return held


def third_party_nodes(session: Session) -> Sequence[Node]:
    return session.exec(
        select(Node)
        .where(Node.kind == NodeKind.THIRD_PARTY, col(Node.active))
        .order_by(col(Node.code))
    ).all()


def mark_health(session: Session, node_id: int, error: str | None) -> None:
    health = _health(session, node_id)
    now = utcnow()
    health.checked_at = now
    if error is None:
        health.down_since = None
        health.last_error = None
    else:
        health.down_since = health.down_since or now
        health.last_error = error[:1000]


def _health(session: Session, node_id: int) -> ThirdPartyHealth:
    health = session.get(ThirdPartyHealth, node_id)
    if health is None:
        health = ThirdPartyHealth(node_id=node_id)
        session.add(health)
    return health


def _locked(session: Session, seller_order_id: str) -> ThirdPartyOrder:
    row = session.exec(
        select(ThirdPartyOrder)
        .where(ThirdPartyOrder.seller_order_id == seller_order_id)
        .with_for_update()
    ).first()
    if row is None:
        raise LookupError(f"no third-party order {seller_order_id}")
    return row


def _new_order(session: Session, row: ThirdPartyOrder, order: Order) -> NewOrder:
    lines = session.exec(
        select(FulfillmentLine)
        .where(FulfillmentLine.fulfillment_id == row.fulfillment_id)
        .order_by(col(FulfillmentLine.sku))
    ).all()
    return NewOrder(
        seller_order_id=row.seller_order_id,
        displayable_order_id=order.external_id[:40],
        ordered_at=order.created_at,
        speed=row.speed,
        address=postal_address(order.destination, order.customer),
        items=tuple(Item(fl.sku, fl.quantity, fl.sku) for fl in lines),
    )


def postal_address(destination: dict[str, Any], customer: dict[str, Any]) -> Address:
    address = destination.get("address") or {}
    return Address(
        name=customer.get("name", ""),
        line1=address.get("line1", ""),
        line2=address.get("line2"),
        city=address.get("city", ""),
        state_or_region=address.get("region"),
        postal_code=address.get("postal_code") or "",
        country_code=address.get("country", "CA"),
        phone=customer.get("phone"),
    )


def _package(p: Package) -> dict[str, Any]:
    return {
        "carrier": p.carrier_code,
        "tracking_number": p.tracking_number,
        "status": p.shipment_status,
        "estimated_arrival": p.estimated_arrival.isoformat() if p.estimated_arrival else None,
        "package_number": p.package_number,
    }
