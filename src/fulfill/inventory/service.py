"""Catalog and stock logic. Services never commit; the request or task boundary does.

Stock changes are single conditional UPDATEs (``... WHERE on_hand - reserved >= :qty``), issued
in sku order, so concurrent orders can never reserve more than is there, on PostgreSQL and on
SQLite alike, and two transactions touching the same rows always lock them in the same order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from fulfill.auth import SERVICE, Caller
from fulfill.db import utcnow
from fulfill.errors import Conflict, NotFound, OutOfStock, Unprocessable
from fulfill.inventory import repository as repo
from fulfill.inventory.models import MovementReason, Node, Product, Stock, StockMovement
from fulfill.inventory.schemas import (
    NodeCreate,
    ProductCreate,
    StockAdjustmentCreate,
    StockLevelSet,
    StockPublic,
)


@dataclass(frozen=True)
class StockLine:
    product_id: int
    sku: str
    quantity: int


class InsufficientStock(OutOfStock):
    """Raised by ``reserve``; the caller may try another node before giving up."""


def create_product(session: Session, payload: ProductCreate) -> Product:
    if repo.product_by_sku(session, payload.sku) is not None:
        raise Conflict(f"a product with sku {payload.sku} exists", sku=payload.sku)
    product = Product.model_validate(payload.model_dump())
    session.add(product)
    _flush_or_conflict(session, f"a product with sku {payload.sku} exists")
    return product


def create_node(session: Session, payload: NodeCreate) -> Node:
    if repo.node_by_code(session, payload.code) is not None:
        raise Conflict(f"a node with code {payload.code} exists", code=payload.code)
    if payload.same_day_radius_km and not payload.kind.is_own:
        raise Unprocessable(
            "only own nodes deliver same day with own vans", field="same_day_radius_km"
        )
    node = Node.model_validate(payload.model_dump(mode="json"))
    session.add(node)
    _flush_or_conflict(session, f"a node with code {payload.code} exists")
    return node


def require_node(session: Session, code: str) -> Node:
    node = repo.node_by_code(session, code)
    if node is None:
        raise NotFound(f"no node with code {code}", code=code)
    return node


def require_products(session: Session, skus: Sequence[str], field: str) -> dict[str, Product]:
    """Products by sku; an unknown sku is a 422 naming the item (``field`` formats its index)."""
    products = repo.products_by_sku(session, skus)
    for index, sku in enumerate(skus):
        if sku not in products:
            raise Unprocessable(f"unknown sku {sku}", field=field.format(index), sku=sku)
    return products


def refuse_duplicate_skus(skus: Sequence[str], field: str) -> None:
    seen: set[str] = set()
    for index, sku in enumerate(skus):
        if sku in seen:
            raise Unprocessable(f"sku {sku} appears more than once", field=field.format(index))
        seen.add(sku)


def set_stock_levels(
    session: Session, code: str, levels: list[StockLevelSet], caller: Caller
) -> list[StockPublic]:
    """Replace on_hand with counted values; the difference is recorded as a ``count``."""
    node, products = _node_and_products(session, code, [level.sku for level in levels])
    result = []
    for level in sorted(levels, key=lambda x: x.sku):
        product = products[level.sku]
        assert node.id is not None and product.id is not None
        stock = locked_stock(session, node.id, product.id)
        if level.on_hand < stock.reserved:
            raise Conflict(
                f"on_hand of {level.sku} at {code} cannot be {level.on_hand}: "
                f"{stock.reserved} units are reserved for open orders",
                sku=level.sku,
                reserved=stock.reserved,
            )
        delta = level.on_hand - stock.on_hand
        stock.on_hand = level.on_hand
        stock.updated_at = utcnow()
        if delta:
            _record(session, stock, MovementReason.COUNT, on_hand_delta=delta, caller=caller)
        result.append(_public(node, product, stock))
    session.flush()
    return result


def adjust_stock(
    session: Session, code: str, adjustments: list[StockAdjustmentCreate], caller: Caller
) -> list[StockPublic]:
    node, products = _node_and_products(session, code, [a.sku for a in adjustments])
    result = []
    for adjustment in sorted(adjustments, key=lambda x: x.sku):
        product = products[adjustment.sku]
        assert node.id is not None and product.id is not None
        stock = locked_stock(session, node.id, product.id)
        if stock.on_hand + adjustment.delta < stock.reserved:
            raise Conflict(
                f"cannot remove {-adjustment.delta} of {adjustment.sku} at {code}: "
                f"{stock.on_hand} on hand, {stock.reserved} reserved for open orders",
                sku=adjustment.sku,
                on_hand=stock.on_hand,
                reserved=stock.reserved,
            )
        stock.on_hand += adjustment.delta
        stock.updated_at = utcnow()
        _record(
            session,
            stock,
            adjustment.reason,
            on_hand_delta=adjustment.delta,
            caller=caller,
            note=adjustment.note,
        )
        result.append(_public(node, product, stock))
    session.flush()
    return result


def reserve(
    session: Session, node_id: int, lines: Sequence[StockLine], order_id: str, caller: Caller
) -> None:
    """Reserve every line at one node, or raise ``InsufficientStock`` for the first that is short.

    On failure the caller must roll back (a savepoint is enough) what was reserved before.
    """
    with session.no_autoflush:  # the ledger rows go out in one batch with the caller's flush
        for line in sorted(lines, key=lambda x: x.sku):
            _reserve_line(session, node_id, line, order_id, caller)


def _reserve_line(
    session: Session, node_id: int, line: StockLine, order_id: str, caller: Caller
) -> None:
    if not _shift_reserved(session, node_id, line, line.quantity, order_id, caller):
        available = repo.available_by_node(session, [line.product_id]).get(
            (node_id, line.product_id), 0
        )
        raise InsufficientStock(line.sku, line.quantity, max(available, 0))


def release(
    session: Session, node_id: int, lines: Sequence[StockLine], order_id: str, caller: Caller
) -> None:
    for line in sorted(lines, key=lambda x: x.sku):
        if not _shift_reserved(session, node_id, line, -line.quantity, order_id, caller):
            # the ledger and the stock disagree: stop rather than guess
            raise Conflict(f"cannot release {line.quantity} of {line.sku}: not reserved")


def _shift_reserved(
    session: Session, node_id: int, line: StockLine, delta: int, order_id: str, caller: Caller
) -> bool:
    """Move ``reserved`` by ``delta`` in one conditional UPDATE, never past what is there,
    and record it in the ledger; False if the guard refused it."""
    stock = col(Stock.on_hand) - col(Stock.reserved) >= delta
    guard = stock if delta > 0 else col(Stock.reserved) >= -delta
    row = session.execute(
        update(Stock)
        .where(col(Stock.node_id) == node_id, col(Stock.product_id) == line.product_id, guard)
        .values(reserved=col(Stock.reserved) + delta, updated_at=utcnow())
        .returning(col(Stock.id), col(Stock.on_hand), col(Stock.reserved))
    ).first()
    if row is None:
        return False
    reason = MovementReason.RESERVATION if delta > 0 else MovementReason.RELEASE
    session.add(
        StockMovement(
            node_id=node_id,
            product_id=line.product_id,
            reserved_delta=delta,
            on_hand_after=row.on_hand,
            reserved_after=row.reserved,
            reason=reason.value,
            order_id=order_id,
            api_key_id=caller.key_id,
        )
    )
    return True


def stock_public(session: Session, sku: str | None, node_code: str | None) -> list[StockPublic]:
    return [
        StockPublic(
            node=code,
            sku=s,
            on_hand=on_hand,
            reserved=reserved,
            available=on_hand - reserved,
            updated_at=updated_at,
        )
        for code, s, on_hand, reserved, updated_at in repo.stock_levels(session, sku, node_code)
    ]


def _node_and_products(
    session: Session, code: str, skus: list[str]
) -> tuple[Node, dict[str, Product]]:
    """The node and the products of a bulk stock request, whose items are ``[i].sku``."""
    node = require_node(session, code)
    refuse_duplicate_skus(skus, "[{}].sku")
    return node, require_products(session, skus, "[{}].sku")


def locked_stock(session: Session, node_id: int, product_id: int) -> Stock:
    """The stock row of a product at a node, locked for this transaction (created if missing)."""
    stock = repo.stock_row_for_update(session, node_id, product_id)
    if stock is None:
        stock = Stock(node_id=node_id, product_id=product_id)
        session.add(stock)
        _flush_or_conflict(session, "the stock row was created concurrently; retry")
    return stock


def _record(
    session: Session,
    stock: Stock,
    reason: MovementReason,
    *,
    caller: Caller,
    on_hand_delta: int = 0,
    note: str | None = None,
) -> None:
    record_movement(session, stock, reason, caller=caller, on_hand_delta=on_hand_delta, note=note)


def record_movement(
    session: Session,
    stock: Stock,
    reason: MovementReason,
    *,
    caller: Caller | None = None,
    on_hand_delta: int = 0,
    reserved_delta: int = 0,
    order_id: str | None = None,
    note: str | None = None,
) -> None:
    """The ledger row for a change already made to ``stock`` (by the service if no caller)."""
    session.add(
        StockMovement(
            node_id=stock.node_id,
            product_id=stock.product_id,
            on_hand_delta=on_hand_delta,
            reserved_delta=reserved_delta,
            on_hand_after=stock.on_hand,
            reserved_after=stock.reserved,
            reason=reason.value,
            note=note,
            order_id=order_id,
            api_key_id=(caller or SERVICE).key_id,
        )
    )


def _public(node: Node, product: Product, stock: Stock) -> StockPublic:
    return StockPublic(
        node=node.code,
        sku=product.sku,
        on_hand=stock.on_hand,
        reserved=stock.reserved,
        available=stock.available,
        updated_at=stock.updated_at,
    )


def _flush_or_conflict(session: Session, message: str) -> None:
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(message) from None
