"""The answer to "what can you promise for this cart?", asked on every cart change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from geopy.geocoders.base import Geocoder
from sqlmodel import Session

from fulfill.config import Settings
from fulfill.errors import FulfillError
from fulfill.orders.schemas import LinePublic
from fulfill.orders.service import cart_lines, locate
from fulfill.sourcing.schemas import PromiseAnswer, PromiseOption, PromiseRequest, ShipmentOption
from fulfill.sourcing.service import source_cart


def quote(
    session: Session, request: PromiseRequest, settings: Settings, geocoder: Geocoder,
    at: datetime,
) -> PromiseAnswer:  # fmt: skip
    cart = cart_lines(session, [(ln.sku, ln.quantity) for ln in request.lines], "lines[{}].sku")
    destination = locate(request.destination, geocoder)
    options = []
    for level in request.service_levels:
        try:
            sourced = source_cart(session, cart, destination, level, at, settings,
                                  postal=request.destination.address is not None)  # fmt: skip
        except FulfillError as exc:
            options.append(PromiseOption(
                service_level=level, available=False, reason=exc.message, problem=exc.code,
                details={k: v for k, v in exc.extensions.items() if k != "service_level"} or None,
            ))  # fmt: skip
            continue
        record = sourced.record()
        promise = sourced.promise
        options.append(PromiseOption(
            service_level=level, available=True,
            window_start=promise.start, window_end=promise.end, order_by=promise.order_by,
            nodes=[s["node"] for s in record["shipments"]], shipments=len(record["shipments"]),
            cost=record["cost"], currency=record["currency"],
            split=[_shipment(s) for s in record["shipments"]],
        ))  # fmt: skip
    return PromiseAnswer(
        at=at, destination={"lat": destination[0], "lon": destination[1]}, options=options
    )


def _shipment(s: dict[str, Any]) -> ShipmentOption:
    lines = [LinePublic(sku=k, quantity=v) for k, v in s["units"].items()]
    return ShipmentOption(node=s["node"], cost=s["cost"], lines=lines)
