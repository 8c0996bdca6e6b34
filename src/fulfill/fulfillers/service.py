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
from typing import Any

from sqlmodel import Session, col, select

from fulfill.auth import SERVICE
from fulfill.config import Settings
from fulfill.db import utcnow
from fulfill.errors import Conflict
from fulfill.fulfillers.models import ThirdPartyHealth, ThirdPartyOrder, ThirdPartyOrderStatus
from fulfill.inventory.models import Node, NodeKind
from fulfill.inventory.service import StockLine, release
from fulfill.orders.models import (
    Fulfillment,
    FulfillmentLine,
    FulfillmentStatus,
    Order,
    ServiceLevel,
)
from fulfill.orders.repository import record_event
from fulfill.outbox.service import enqueue
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


def third_party_nodes(session: Session) -> Sequence[Node]:
    return session.exec(
        select(Node)
        .where(Node.kind == NodeKind.THIRD_PARTY, col(Node.active))
        .order_by(col(Node.code))
    ).all()


def mark_health(session: Session, node_id: int, error: str | None) -> None:
    health = health_of(session, node_id)
    now = utcnow()
    health.checked_at = now
    if error is None:
        health.down_since = None
        health.last_error = None
    else:
        health.down_since = health.down_since or now
        health.last_error = error[:1000]


def health_of(session: Session, node_id: int) -> ThirdPartyHealth:
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
