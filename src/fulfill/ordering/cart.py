"""A cart as the use cases take it in: its products, its door, and its stock reserved."""

from __future__ import annotations

from collections.abc import Sequence

from geopy.geocoders.base import Geocoder
from sqlmodel import Session

from fulfill.auth import Caller
from fulfill.config import Settings
from fulfill.errors import OutOfStock
from fulfill.geocoding import geocode
from fulfill.inventory import service as inventory
from fulfill.inventory.service import InsufficientStock, StockLine
from fulfill.orders.schemas import Destination
from fulfill.sourcing.service import Ask, CartLine, Sourcing, source_cart

# Concurrent orders may take the units a decision counted on; source again this many times.
RESERVE_ATTEMPTS = 3


def cart_lines(session: Session, wanted: Sequence[tuple[str, int]], field: str) -> list[CartLine]:
    """The cart's lines with their products; unknown or repeated skus are a 422 naming the item."""
    skus = [sku for sku, _ in wanted]
    inventory.refuse_duplicate_skus(skus, field)
    products = inventory.require_products(session, skus, field)
    return [
        CartLine(products[sku].id, sku, quantity, products[sku].weight_kg)  # type: ignore[arg-type]
        for sku, quantity in wanted
    ]


def locate(dest: Destination, geocoder: Geocoder) -> tuple[float, float]:
    if dest.lat is not None and dest.lon is not None:
        return dest.lat, dest.lon
    assert dest.address is not None
    return geocode(geocoder, dest.address.one_line(), field="destination.address")


def source_and_reserve(
    session: Session, caller: Caller, order_id: str, ask: Ask, settings: Settings
) -> Sourcing:
    """Source the cart and reserve every shipment; if a concurrent order took units first,
    source again from what is left (a few times), then say what is short."""
    shortage: InsufficientStock | None = None
    for _ in range(RESERVE_ATTEMPTS):
        sourced = source_cart(session, ask, settings)
        savepoint = session.begin_nested()
        try:
            for node, _, shipment in sourced.shipments():
                lines = [ln for ln in ask.lines if ln.sku in shipment.units]
                stock_lines = [
                    StockLine(ln.product_id, ln.sku, shipment.units[ln.sku]) for ln in lines
                ]
                inventory.reserve(session, node.id, stock_lines, order_id, caller)  # type: ignore[arg-type]
        except InsufficientStock as exc:
            savepoint.rollback()
            shortage = exc
            continue
        savepoint.commit()
        return sourced
    assert shortage is not None
    raise OutOfStock(
        shortage.extensions["sku"],
        shortage.extensions["requested"],
        shortage.extensions["available"],
    )
