from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from fulfill.db import JSONType, UTCDateTime, utcnow


class ThirdPartyOrderStatus(StrEnum):
    REQUESTED = "requested"  # decided and reserved here; not yet acknowledged by the third party
    CREATED = "created"  # the third party has it
    SHIPPED = "shipped"
    CANCEL_REQUESTED = "cancel_requested"
    CANCELLED = "cancelled"
    FAILED = "failed"  # the third party refused it; the order's timeline says why


class ThirdPartyOrder(SQLModel, table=True):
    """A fulfillment shipped by a third party: the order we place there, keyed by our id."""

    __tablename__ = "third_party_orders"

    id: int | None = Field(default=None, primary_key=True)
    fulfillment_id: str = Field(foreign_key="fulfillments.id", unique=True, max_length=36)
    order_id: str = Field(foreign_key="orders.id", index=True, max_length=36)
    node_id: int = Field(foreign_key="nodes.id", index=True)
    seller_order_id: str = Field(
        max_length=40, unique=True, description="sellerFulfillmentOrderId: the idempotency key"
    )
    speed: str = Field(max_length=24)
    status: str = Field(default=ThirdPartyOrderStatus.REQUESTED, max_length=24, index=True)
    remote_status: str | None = Field(default=None, max_length=32)
    packages: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSONType, nullable=False)
    )
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ThirdPartyHealth(SQLModel, table=True):
    """Whether a third-party node answered its last call; sourcing avoids one that did not."""

    __tablename__ = "third_party_health"

    node_id: int = Field(foreign_key="nodes.id", primary_key=True)
    down_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=1000)
    checked_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    synced_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
