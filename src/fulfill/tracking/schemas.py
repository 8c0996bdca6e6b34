"""API shapes of shipments, their timelines and alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class ShipmentEvent(BaseModel):
    status: str
    code: str = Field(description="the carrier's own code")
    description: str
    location: str | None
    reason: str | None
    occurred_at: datetime
    received_at: datetime
    source: str = Field(description="poll, webhook or driver")
    moved: bool = Field(description="whether it moved the shipment's status")


class ShipmentAlert(BaseModel):
    kind: str = Field(description="late, stalled, attempt_failed, exception or lost")
    detected_at: datetime
    details: dict[str, Any]


class ShipmentPublic(BaseModel):
    id: str
    order: str
    fulfillment: str
    carrier: str
    tracking_number: str
    status: str
    status_at: datetime
    reason: str | None = Field(description="why, for an exception or a failed attempt")
    eta: datetime | None
    eta_source: str | None = Field(description="plan, carrier or model")
    promised_end: datetime | None
    late: bool = Field(description="the ETA is past the promised window")
    last_scan_at: datetime | None
    timeline: list[ShipmentEvent]
    alerts: list[ShipmentAlert]


class WebhookAccepted(BaseModel):
    receipt: int
    events: int
    already_kept: bool = False  # a retry or replay of a delivery kept before: stored once
