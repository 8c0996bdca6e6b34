"""All order queries. Every read starts from ``visible_orders``, already filtered by the
caller, so a route cannot forget the check and leak another storefront's order."""

from __future__ import annotations

import base64
import binascii
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, and_, col, or_, select
from sqlmodel.sql.expression import SelectOfScalar

from fulfill.auth import Caller
from fulfill.db import utcnow
from fulfill.errors import Unprocessable
from fulfill.inventory.models import Node
from fulfill.orders.models import Fulfillment, FulfillmentLine, Order, OrderEvent, OrderLine
from fulfill.orders.timeline import TimelineEntry


@dataclass(frozen=True)
class OrderFilters:
    status: str | None = None
    service_level: str | None = None
    external_id: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


@dataclass
class OrderBundle:
    """An order with what its public view shows."""

    order: Order
    lines: list[OrderLine]
    fulfillments: list[tuple[Fulfillment, str, list[FulfillmentLine]]]
    events: list[OrderEvent] | None = None


def visible_orders(caller: Caller) -> SelectOfScalar[Order]:
    statement = select(Order)
    if not caller.sees_all_orders:
        statement = statement.where(Order.storefront == caller.tenant)
    return statement


def get_visible(
    session: Session, caller: Caller, order_id: str, for_update: bool = False
) -> Order | None:
    statement = visible_orders(caller).where(Order.id == order_id)
    if for_update:
        statement = statement.with_for_update()
    return session.exec(statement).first()


def by_external_id(session: Session, storefront: str, external_id: str) -> Order | None:
    statement = select(Order).where(
        Order.storefront == storefront, Order.external_id == external_id
    )
    return session.exec(statement).first()


def page(
    session: Session, caller: Caller, filters: OrderFilters, cursor: str | None, limit: int
) -> tuple[list[Order], str | None]:
    """Newest first, keyset-paginated on (created_at, id) so pages never skip or repeat."""
    statement = visible_orders(caller)
    if filters.status:
        statement = statement.where(Order.status == filters.status)
    if filters.service_level:
        statement = statement.where(Order.service_level == filters.service_level)
    if filters.external_id:
        statement = statement.where(Order.external_id == filters.external_id)
    if filters.created_from:
        statement = statement.where(col(Order.created_at) >= filters.created_from)
    if filters.created_to:
        statement = statement.where(col(Order.created_at) < filters.created_to)
    if cursor:
        at, last_id = decode_cursor(cursor)
        statement = statement.where(
            or_(
                col(Order.created_at) < at,
                and_(col(Order.created_at) == at, col(Order.id) < last_id),
            )
        )
    statement = statement.order_by(col(Order.created_at).desc(), col(Order.id).desc())
    rows = list(session.exec(statement.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1]) if more and rows else None


def bundles(session: Session, orders: Sequence[Order], with_events: bool) -> list[OrderBundle]:
    """Load lines, fulfillments (with node codes) and optionally timelines, in a few queries."""
    ids = [o.id for o in orders]
    if not ids:
        return []
    lines: dict[str, list[OrderLine]] = defaultdict(list)
    for line in session.exec(
        select(OrderLine).where(col(OrderLine.order_id).in_(ids)).order_by(col(OrderLine.id))
    ):
        lines[line.order_id].append(line)
    fulfillment_rows = list(
        session.exec(
            select(Fulfillment, Node.code)
            .join(Node, col(Node.id) == Fulfillment.node_id)
            .where(col(Fulfillment.order_id).in_(ids))
            .order_by(col(Fulfillment.created_at), col(Fulfillment.id))
        )
    )
    f_lines: dict[str, list[FulfillmentLine]] = defaultdict(list)
    for fl in session.exec(
        select(FulfillmentLine)
        .where(col(FulfillmentLine.fulfillment_id).in_([f.id for f, _ in fulfillment_rows]))
        .order_by(col(FulfillmentLine.id))
    ):
        f_lines[fl.fulfillment_id].append(fl)
    fulfillments: dict[str, list[tuple[Fulfillment, str, list[FulfillmentLine]]]] = defaultdict(
        list
    )
    for f, code in fulfillment_rows:
        fulfillments[f.order_id].append((f, code, f_lines[f.id]))
    events: dict[str, list[OrderEvent]] = defaultdict(list)
    if with_events:
        for ev in session.exec(
            select(OrderEvent).where(col(OrderEvent.order_id).in_(ids)).order_by(col(OrderEvent.id))
        ):
            events[ev.order_id].append(ev)
    return [
        OrderBundle(o, lines[o.id], fulfillments[o.id], events[o.id] if with_events else None)
        for o in orders
    ]


def fulfillments_of(
    session: Session, order_id: str
) -> list[tuple[Fulfillment, list[FulfillmentLine]]]:
    result = []
    for f in session.exec(select(Fulfillment).where(Fulfillment.order_id == order_id)):
        lines = list(
            session.exec(select(FulfillmentLine).where(FulfillmentLine.fulfillment_id == f.id))
        )
        result.append((f, lines))
    return result


def encode_cursor(order: Order) -> str:
    raw = json.dumps([order.created_at.isoformat(), order.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw: Any = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        at, order_id = raw
        parsed = datetime.fromisoformat(at)
        if parsed.tzinfo is None or not isinstance(order_id, str):
            raise ValueError
        return parsed, order_id
    except (ValueError, TypeError, RecursionError, binascii.Error, json.JSONDecodeError):
        raise Unprocessable("the cursor is not one this API returned", field="cursor") from None


def record_event(
    session: Session, order_id: str, kind: str, data: dict[str, Any], at: datetime | None = None
) -> OrderEvent:
    event = OrderEvent(order_id=order_id, kind=kind, data=data, at=at or utcnow())
    session.add(event)
    return event


def record_events(session: Session, events: Sequence[TimelineEntry]) -> None:
    """Many timeline entries (order id, kind, data, at) in one statement: for workers that
    apply thousands of carrier events at once."""
    if events:
        rows = [{"order_id": o, "kind": k, "data": d, "at": at} for o, k, d, at in events]
        session.execute(insert(OrderEvent), rows)


def order_by_token(session: Session, token: str) -> Order | None:
    """The order a tracking link names (its token is unique and unguessable)."""
    return session.exec(select(Order).where(Order.tracking_token == token)).first()
