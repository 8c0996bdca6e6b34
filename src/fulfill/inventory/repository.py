"""All inventory queries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from fulfill.inventory.models import Node, Product, Stock, StockMovement


def product_by_sku(session: Session, sku: str) -> Product | None:
    return session.exec(select(Product).where(Product.sku == sku)).first()


def products_by_sku(session: Session, skus: Iterable[str]) -> dict[str, Product]:
    rows = session.exec(select(Product).where(col(Product.sku).in_(set(skus))))
    return {p.sku: p for p in rows}


def node_by_code(session: Session, code: str) -> Node | None:
    return session.exec(select(Node).where(Node.code == code)).first()


def nodes_by_id(session: Session, ids: Iterable[int]) -> dict[int, Node]:
    return {n.id: n for n in session.exec(select(Node).where(col(Node.id).in_(set(ids))))}  # type: ignore[misc]


def list_products(session: Session, limit: int, after_sku: str | None) -> Sequence[Product]:
    statement = select(Product).order_by(col(Product.sku)).limit(limit)
    if after_sku:
        statement = statement.where(Product.sku > after_sku)
    return session.exec(statement).all()


def list_nodes(session: Session) -> Sequence[Node]:
    return session.exec(select(Node).order_by(col(Node.code))).all()


def active_nodes(session: Session) -> Sequence[Node]:
    return session.exec(select(Node).where(col(Node.active).is_(True))).all()


def stock_row_for_update(session: Session, node_id: int, product_id: int) -> Stock | None:
    statement = (
        select(Stock)
        .where(Stock.node_id == node_id, Stock.product_id == product_id)
        .with_for_update()
    )
    return session.exec(statement).first()


def stock_levels(
    session: Session, sku: str | None = None, node_code: str | None = None
) -> list[tuple[str, str, int, int, datetime]]:
    """(node code, sku, on hand, reserved, updated at), by sku then node."""
    statement = (
        sa_select(
            col(Node.code),
            col(Product.sku),
            col(Stock.on_hand),
            col(Stock.reserved),
            col(Stock.updated_at),
        )
        .join(Node, col(Node.id) == Stock.node_id)
        .join(Product, col(Product.id) == Stock.product_id)
        .order_by(col(Product.sku), col(Node.code))
    )
    if sku is not None:
        statement = statement.where(col(Product.sku) == sku)
    if node_code is not None:
        statement = statement.where(col(Node.code) == node_code)
    return [
        (code, s, on_hand, reserved, at)
        for code, s, on_hand, reserved, at in session.execute(statement)
    ]


def available_by_node(session: Session, product_ids: Iterable[int]) -> dict[tuple[int, int], int]:
    """(node id, product id) -> units available, for the given products."""
    statement = select(Stock.node_id, Stock.product_id, Stock.on_hand, Stock.reserved).where(
        col(Stock.product_id).in_(set(product_ids))
    )
    return {(n, p): on_hand - reserved for n, p, on_hand, reserved in session.exec(statement)}


def movements(
    session: Session, sku: str | None, node_code: str | None, order_id: str | None, limit: int
) -> Sequence[tuple[StockMovement, str, str]]:
    statement = (
        select(StockMovement, Node.code, Product.sku)
        .join(Node, col(Node.id) == StockMovement.node_id)
        .join(Product, col(Product.id) == StockMovement.product_id)
        .order_by(col(StockMovement.id).desc())
        .limit(limit)
    )
    if sku is not None:
        statement = statement.where(Product.sku == sku)
    if node_code is not None:
        statement = statement.where(Node.code == node_code)
    if order_id is not None:
        statement = statement.where(StockMovement.order_id == order_id)
    return session.exec(statement).all()
