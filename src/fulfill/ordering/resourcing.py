"""Re-sourcing a fulfillment that its node refused (its units are back)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from fulfill.auth import SERVICE
from fulfill.config import Settings
from fulfill.errors import FulfillError
from fulfill.inventory.repository import nodes_by_id
from fulfill.ordering.cart import cart_lines, source_and_reserve
from fulfill.ordering.placing import open_fulfillments
from fulfill.orders import repository as repo
from fulfill.orders.models import Fulfillment, Order, OrderStatus, ServiceLevel
from fulfill.orders.repository import record_event
from fulfill.sourcing.service import Ask


def resource_fulfillment(
    session: Session, fulfillment_id: str, settings: Settings, *, now: datetime
) -> None:
    """Ship it from another node if one can, else leave a clear note on the order for a
    person. The order is never dropped."""
    fulfillment = session.get(Fulfillment, fulfillment_id)
    assert fulfillment is not None
    order = session.get(Order, fulfillment.order_id)
    assert order is not None
    if order.status == OrderStatus.CANCELLED:
        return
    refused = nodes_by_id(session, [fulfillment.node_id])[fulfillment.node_id]
    f_lines = next(
        lines for f, lines in repo.fulfillments_of(session, order.id) if f.id == fulfillment_id
    )
    cart = cart_lines(session, [(fl.sku, fl.quantity) for fl in f_lines], "lines[{}].sku")
    ask = Ask(
        cart,
        (order.dest_lat, order.dest_lon),
        ServiceLevel(order.service_level),
        now,
        postal=bool(order.destination.get("address")),
        refused_by=frozenset({refused.code}),
    )
    try:
        sourced = source_and_reserve(session, SERVICE, order.id, ask, settings)
    except FulfillError as exc:
        note = {"fulfillment": fulfillment_id, "reason": exc.message}
        record_event(session, order.id, "fulfillment.needs_attention", note, at=now)
        return
    order.updated_at = now
    made = open_fulfillments(session, order, sourced, cart, settings, promised=False)
    moved = {
        "fulfillment": fulfillment_id,
        "from": refused.code,
        "to": [{"fulfillment": f.id, "node": code} for f, code, _ in made],
        "cost": sourced.record()["cost"],
        "promise_kept": sourced.promise.end <= order.promise_end,
    }
    record_event(session, order.id, "fulfillment.re_sourced", moved, at=now)
