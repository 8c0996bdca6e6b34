from __future__ import annotations

import secrets
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from fulfill.db import JSONType, UTCDateTime, utcnow


class OrderStatus(StrEnum):
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"


class ServiceLevel(StrEnum):
    SAME_DAY = "same_day"
    NEXT_DAY = "next_day"
    STANDARD = "standard"


class FulfillmentStatus(StrEnum):
    PENDING = "pending"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    FAILED = "failed"
    HANDED_TO_CARRIER = "handed_to_carrier"
    CANCELLED = "cancelled"


def new_id() -> str:
    return str(uuid.uuid4())


def new_tracking_token() -> str:
    """The tracking page's address: 128 random bits, so a page cannot be found by guessing."""
    return secrets.token_urlsafe(16)


class Order(SQLModel, table=True):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("storefront", "external_id"),
        Index("ix_orders_storefront_created", "storefront", "created_at", "id"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    storefront: str = Field(max_length=64)
    external_id: str = Field(max_length=128)
    status: str = Field(max_length=16, index=True)
    service_level: str = Field(max_length=16)
    customer: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))
    destination: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))
    dest_lat: float
    dest_lon: float
    promise_start: datetime = Field(sa_type=UTCDateTime)
    promise_end: datetime = Field(sa_type=UTCDateTime)
    order_by: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    cancelled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    cancel_reason: str | None = Field(default=None, max_length=500)
    sourcing: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSONType, nullable=True), description="why these nodes"
    )
    tracking_token: str = Field(
        default_factory=new_tracking_token, max_length=32, unique=True, index=True
    )


class OrderLine(SQLModel, table=True):
    __tablename__ = "order_lines"
    __table_args__ = (CheckConstraint("quantity > 0", name="order_lines_quantity_positive"),)

    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(foreign_key="orders.id", index=True, max_length=36)
    product_id: int = Field(foreign_key="products.id")
    sku: str = Field(max_length=64)
    quantity: int


class Fulfillment(SQLModel, table=True):
    """The part of an order that ships from one node."""

    __tablename__ = "fulfillments"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    order_id: str = Field(foreign_key="orders.id", index=True, max_length=36)
    node_id: int = Field(foreign_key="nodes.id", index=True)
    status: str = Field(max_length=24)
    wave_id: int | None = Field(
        default=None, foreign_key="waves.id", index=True, description="same day: its wave"
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class FulfillmentLine(SQLModel, table=True):
    __tablename__ = "fulfillment_lines"
    __table_args__ = (CheckConstraint("quantity > 0", name="fulfillment_lines_quantity_positive"),)

    id: int | None = Field(default=None, primary_key=True)
    fulfillment_id: str = Field(foreign_key="fulfillments.id", index=True, max_length=36)
    product_id: int = Field(foreign_key="products.id")
    sku: str = Field(max_length=64)
    quantity: int


class OrderEvent(SQLModel, table=True):
    """One entry of the order's timeline: the whole story of an order in one place."""

    __tablename__ = "order_events"

    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(foreign_key="orders.id", index=True, max_length=36)
    kind: str = Field(max_length=64)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
