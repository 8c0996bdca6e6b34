from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from fulfill.db import UTCDateTime, utcnow


class SuggestionKind(StrEnum):
    TRANSFER = "transfer"  # from an own node with more than it needs
    REPLENISH = "replenish"  # buy in, or send to the third party, from the supplier


class RestockSuggestion(SQLModel, table=True):
    """What one refresh suggests for one sku at one node, with the figures behind it."""

    __tablename__ = "restock_suggestions"

    id: int | None = Field(default=None, primary_key=True)
    run_at: datetime = Field(sa_type=UTCDateTime, index=True)
    product_id: int = Field(foreign_key="products.id", index=True)
    sku: str = Field(max_length=64)
    node_id: int = Field(foreign_key="nodes.id", index=True)
    kind: str = Field(max_length=16)
    from_node_id: int | None = Field(default=None, foreign_key="nodes.id")
    quantity: int
    daily_demand: float
    method: str = Field(max_length=16, description="croston, tsb or ses")
    safety_stock: int
    reorder_point: int
    available: int
    lead_days: float
    reason: str = Field(max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
