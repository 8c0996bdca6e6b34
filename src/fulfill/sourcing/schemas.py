from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from fulfill.inputs import CreateModel, UtcDatetime
from fulfill.orders.models import ServiceLevel
from fulfill.orders.schemas import Destination, LinePublic, OrderLineCreate


class PromiseRequest(CreateModel):
    destination: Destination
    lines: list[OrderLineCreate] = Field(min_length=1, max_length=100)
    at: UtcDatetime | None = Field(
        default=None, description="when the order would be placed; default: now"
    )
    service_levels: list[ServiceLevel] = Field(
        default_factory=lambda: list(ServiceLevel), min_length=1, max_length=3
    )


class ShipmentOption(BaseModel):
    node: str
    lines: list[LinePublic]
    cost: float


class PromiseOption(BaseModel):
    service_level: ServiceLevel
    available: bool
    reason: str | None = Field(None, description="why not, when not available")
    problem: str | None = Field(None, description="the problem type an order would get")
    details: dict[str, Any] | None = Field(None, description="e.g. each node's own reason")
    window_start: datetime | None = None
    window_end: datetime | None = None
    order_by: datetime | None = Field(
        None, description="order by then for this window: the wave cutoff for same day"
    )
    nodes: list[str] = Field(default_factory=list)
    shipments: int = 0
    cost: float | None = None
    currency: str | None = None
    split: list[ShipmentOption] = Field(default_factory=list)


class PromiseAnswer(BaseModel):
    at: datetime
    destination: dict[str, float]
    options: list[PromiseOption]
