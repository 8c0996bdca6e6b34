"""The answer to "what can you promise for this cart?", asked on every cart change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from geopy.geocoders.base import Geocoder
from sqlmodel import Session

from fulfill.config import Settings
from fulfill.errors import FulfillError
from fulfill.ordering.cart import cart_lines, locate
from fulfill.orders.models import ServiceLevel
from fulfill.orders.schemas import LinePublic
from fulfill.sourcing.schemas import PromiseAnswer, PromiseOption, PromiseRequest, ShipmentOption
from fulfill.sourcing.service import Ask, Sourcing, source_cart


def quote(
    session: Session, request: PromiseRequest, settings: Settings, geocoder: Geocoder, at: datetime
) -> PromiseAnswer:
    """A dry run of placing the cart at each service level asked: nothing is reserved."""
    cart = cart_lines(session, [(ln.sku, ln.quantity) for ln in request.lines], "lines[{}].sku")
    destination = locate(request.destination, geocoder)
    postal = request.destination.address is not None
    options = []
    for level in request.service_levels:
        try:
            sourced = source_cart(session, Ask(cart, destination, level, at, postal), settings)
        except FulfillError as exc:
            options.append(_unavailable(level, exc))
            continue
        options.append(_available(level, sourced))
    return PromiseAnswer(
        at=at, destination={"lat": destination[0], "lon": destination[1]}, options=options
    )


def _unavailable(level: ServiceLevel, exc: FulfillError) -> PromiseOption:
    details = {k: v for k, v in exc.extensions.items() if k != "service_level"}
    return PromiseOption(
        service_level=level,
        available=False,
        reason=exc.message,
        problem=exc.code,
        details=details or None,
    )


def _available(level: ServiceLevel, sourced: Sourcing) -> PromiseOption:
    record = sourced.record()
    promise = sourced.promise
    return PromiseOption(
        service_level=level,
        available=True,
        window_start=promise.start,
        window_end=promise.end,
        order_by=promise.order_by,
        nodes=[s["node"] for s in record["shipments"]],
        shipments=len(record["shipments"]),
        cost=record["cost"],
        currency=record["currency"],
        split=[_shipment(s) for s in record["shipments"]],
    )


def _shipment(s: dict[str, Any]) -> ShipmentOption:
    lines = [LinePublic(sku=k, quantity=v) for k, v in s["units"].items()]
    return ShipmentOption(node=s["node"], cost=s["cost"], lines=lines)
