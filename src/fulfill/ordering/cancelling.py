"""Cancelling an order before it ships: its reservations released, its third-party orders
cancelled, its parcels no longer followed."""

from __future__ import annotations

from sqlmodel import Session

from fulfill.auth import Caller
from fulfill.config import Settings
from fulfill.db import utcnow
from fulfill.dispatch import live
from fulfill.errors import Conflict, NotFound
from fulfill.fulfillers.service import request_cancel
from fulfill.inventory import service as inventory
from fulfill.inventory.repository import nodes_by_id
from fulfill.inventory.service import StockLine
from fulfill.orders import repository as repo
from fulfill.orders import timeline
from fulfill.orders.models import FulfillmentStatus, OrderStatus
from fulfill.orders.public import order_public
from fulfill.orders.repository import record_event
from fulfill.outbox.service import enqueue
from fulfill.tracking.shipping import stop_following


def cancel_order(
    session: Session, caller: Caller, order_id: str, reason: str | None, settings: Settings
) -> repo.OrderBundle:
    """Cancelling a cancelled order changes nothing; a fulfillment under way is a 409."""
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
        if fulfillment.wave_id is not None:  # its place in the wave's live plan is free again
            live.leave(session, fulfillment.id, fulfillment.wave_id)
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
