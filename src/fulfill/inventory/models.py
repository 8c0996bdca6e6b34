from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from fulfill.db import JSONType, UTCDateTime, utcnow


class NodeKind(StrEnum):
    WAREHOUSE = "warehouse"
    STORE = "store"
    THIRD_PARTY = "third_party"

    @property
    def is_own(self) -> bool:
        return self is not NodeKind.THIRD_PARTY


class MovementReason(StrEnum):
    COUNT = "count"  # a stock count replaced on_hand
    RECEIPT = "receipt"
    DAMAGE = "damage"
    LOSS = "loss"
    CORRECTION = "correction"
    RETURN = "return"
    TRANSFER = "transfer"
    RESERVATION = "reservation"
    RELEASE = "release"
    SHIPMENT = "shipment"  # reserved units left the node


class Product(SQLModel, table=True):
    __tablename__ = "products"

    id: int | None = Field(default=None, primary_key=True)
    sku: str = Field(max_length=64, unique=True, index=True)
    name: str = Field(max_length=200)
    weight_kg: float
    length_cm: float | None = None
    width_cm: float | None = None
    height_cm: float | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Node(SQLModel, table=True):
    __tablename__ = "nodes"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True, index=True)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=16)
    lat: float
    lon: float
    timezone: str = Field(max_length=64)
    same_day_radius_km: float = 0.0
    wave_cutoffs: list[str] = Field(
        default_factory=list, sa_column=Column(JSONType, nullable=False)
    )
    pick_capacity_per_day: int | None = Field(
        default=None, description="units it can pick in a local day; none: no limit"
    )
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    @property
    def node_kind(self) -> NodeKind:
        return NodeKind(self.kind)


class Stock(SQLModel, table=True):
    __tablename__ = "stock"
    __table_args__ = (
        UniqueConstraint("node_id", "product_id"),
        CheckConstraint("reserved >= 0", name="stock_reserved_non_negative"),
        CheckConstraint("reserved <= on_hand", name="stock_reserved_within_on_hand"),
    )

    id: int | None = Field(default=None, primary_key=True)
    node_id: int = Field(foreign_key="nodes.id", index=True)
    product_id: int = Field(foreign_key="products.id", index=True)
    on_hand: int = 0
    reserved: int = 0
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class StockMovement(SQLModel, table=True):
    """The ledger: every change of on_hand or reserved, with why and for whom."""

    __tablename__ = "stock_movements"

    id: int | None = Field(default=None, primary_key=True)
    node_id: int = Field(foreign_key="nodes.id", index=True)
    product_id: int = Field(foreign_key="products.id", index=True)
    on_hand_delta: int = 0
    reserved_delta: int = 0
    on_hand_after: int
    reserved_after: int
    reason: str = Field(max_length=16)
    note: str | None = Field(default=None, max_length=500)
    order_id: str | None = Field(default=None, max_length=36, index=True)
    api_key_id: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    details: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType))
