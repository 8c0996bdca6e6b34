"""Shipments followed to the door: their events, their alerts, and the carriers' health.

A shipment's ``status`` only moves forward (``fulfill_carriers.status``); every event is kept,
even one that arrives late and changes nothing. ``late`` is a flag beside the status: the ETA
is past the promised window. Alerts are written once per (shipment, kind) for the notices to
act on.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from fulfill.db import JSONType, UTCDateTime, utcnow
from fulfill.orders.models import new_id
from fulfill_carriers import TrackingStatus


class AlertKind(StrEnum):
    LATE = "late"  # the ETA is past the promised window
    STALLED = "stalled"  # no scan for longer than its status allows
    ATTEMPT_FAILED = "attempt_failed"
    EXCEPTION = "exception"
    LOST = "lost"


class Shipment(SQLModel, table=True):
    """One parcel of a fulfillment, followed through its carrier."""

    __tablename__ = "shipments"
    __table_args__ = (
        UniqueConstraint("carrier", "tracking_number"),
        Index("ix_shipments_due", "active", "next_poll_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    fulfillment_id: str = Field(foreign_key="fulfillments.id", index=True, max_length=36)
    order_id: str = Field(foreign_key="orders.id", index=True, max_length=36)
    carrier: str = Field(max_length=32)
    tracking_number: str = Field(max_length=64)
    tracking_ref: str = Field(max_length=64, description="what the carrier's tracking call takes")
    status: str = Field(default=TrackingStatus.PENDING, max_length=24)
    status_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_scan_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reason: str | None = Field(default=None, max_length=24, description="of an exception")
    eta: datetime | None = Field(default=None, sa_type=UTCDateTime)
    eta_source: str | None = Field(default=None, max_length=16)  # plan, carrier, transit model
    promised_end: datetime | None = Field(default=None, sa_type=UTCDateTime)
    late: bool = False
    active: bool = True  # followed until a terminal status
    next_poll_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    poll_failures: int = 0
    checked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # by the sweep
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TrackingEvent(SQLModel, table=True):
    """What a carrier said, once: ``key`` is the same for the same event however it arrives."""

    __tablename__ = "tracking_events"
    __table_args__ = (UniqueConstraint("shipment_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    shipment_id: str = Field(foreign_key="shipments.id", index=True, max_length=36)
    key: str = Field(max_length=80)
    status: str = Field(max_length=24)
    raw_code: str = Field(max_length=64)
    description: str = Field(default="", max_length=500)
    location: str | None = Field(default=None, max_length=200)
    reason: str | None = Field(default=None, max_length=24)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    source: str = Field(max_length=16)  # poll, webhook, driver
    moved: bool = False  # whether it changed the shipment's status


class TrackingAlert(SQLModel, table=True):
    __tablename__ = "tracking_alerts"
    __table_args__ = (UniqueConstraint("shipment_id", "kind"),)

    id: int | None = Field(default=None, primary_key=True)
    shipment_id: str = Field(foreign_key="shipments.id", index=True, max_length=36)
    order_id: str = Field(foreign_key="orders.id", index=True, max_length=36)
    kind: str = Field(max_length=24)
    detected_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    details: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONType, nullable=False)
    )


class CarrierHealth(SQLModel, table=True):
    """A carrier's circuit: after repeated failures it is left alone until ``open_until``."""

    __tablename__ = "carrier_health"

    carrier: str = Field(primary_key=True, max_length=32)
    failures: int = 0
    open_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=1000)
    last_success_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    alerted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    polling_until: datetime | None = Field(
        default=None, sa_type=UTCDateTime, description="a poll cycle holds the carrier until"
    )


class WebhookReceipt(SQLModel, table=True):
    """A verified webhook delivery, kept until a worker has applied its events: what the API
    accepted is never lost, and a replay of the same delivery is refused."""

    __tablename__ = "webhook_receipts"
    __table_args__ = (
        UniqueConstraint("carrier", "delivery_id"),
        Index("ix_webhook_receipts_pending", "processed_at", "received_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    carrier: str = Field(max_length=32)
    delivery_id: str = Field(max_length=128)
    events: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSONType, nullable=False)
    )
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    processed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    attempts: int = 0
    retry_at: datetime | None = Field(
        default=None, sa_type=UTCDateTime, description="when to try its unknown parcels again"
    )
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
