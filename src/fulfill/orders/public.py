"""An order as its storefront sees it: in the API's answers and in the events it is sent."""

from __future__ import annotations

from sqlmodel import Session

from fulfill.auth import Caller
from fulfill.config import Settings
from fulfill.errors import NotFound
from fulfill.orders import repository as repo
from fulfill.orders.models import FulfillmentStatus, OrderStatus, ServiceLevel
from fulfill.orders.schemas import FulfillmentPublic, LinePublic, OrderPublic, Promise


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
