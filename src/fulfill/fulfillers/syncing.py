"""What the beat's sync reads back from a fulfiller: its stock into the node (less what it holds for
our open orders), and our orders' progress, each shipped package followed by tracking."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from fulfill.fulfillers.models import ThirdPartyOrder, ThirdPartyOrderStatus
from fulfill.fulfillers.service import health_of, refuse
from fulfill.inventory.models import MovementReason, Node, Product
from fulfill.inventory.service import locked_stock, record_movement
from fulfill.orders.models import (
    Fulfillment,
    FulfillmentLine,
    FulfillmentStatus,
)
from fulfill.orders.repository import record_event
from fulfill.tracking import following
from fulfill_carriers import McfCarrier, McfClient, Package


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
    health = health_of(session, node.id)
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


def _package(p: Package) -> dict[str, Any]:
    return {
        "carrier": p.carrier_code,
        "tracking_number": p.tracking_number,
        "status": p.shipment_status,
        "estimated_arrival": p.estimated_arrival.isoformat() if p.estimated_arrival else None,
        "package_number": p.package_number,
    }
