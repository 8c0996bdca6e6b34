"""An order's whole story as the API answers it: the order, its timeline, why it ships from
where it does, and each parcel followed."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from fulfill.config import Settings
from fulfill.orders import repository as repo
from fulfill.orders.public import order_public
from fulfill.orders.schemas import OrderPublic, TimelineEntry
from fulfill.tracking.schemas import ShipmentPublic


class OrderDetail(OrderPublic):
    timeline: list[TimelineEntry]
    shipments: list[ShipmentPublic] = Field(
        default_factory=list, description="each parcel followed: status, ETA, events, alerts"
    )
    sourcing: dict[str, Any] | None = Field(
        None, description="why these nodes: the decision, its cost and the ranked alternatives"
    )


def order_detail(bundle: repo.OrderBundle, settings: Settings) -> OrderDetail:
    return OrderDetail(
        **order_public(bundle, settings).model_dump(),
        timeline=[TimelineEntry(at=e.at, kind=e.kind, data=e.data) for e in bundle.events or []],
        sourcing=bundle.order.sourcing,
    )
