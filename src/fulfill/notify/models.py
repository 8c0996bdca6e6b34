"""Notices sent to customers, and the cases customers open from their tracking page.

A notice is one message on one channel about one thing that happened (``subject``: a shipment,
an order, a moved delivery): unique per (subject, kind, channel), so replays, retries and
duplicate events never send it twice. The row is written in the transaction of the change that
caused it, with an outbox event that sends it; a channel that fails ends the row ``failed`` and
starts the same notice on the customer's next channel (``fallback_of``).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from fulfill.db import JSONType, UTCDateTime, utcnow
from fulfill.orders.models import new_id


class NoticeStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # this channel gave up; see fallback_of for what came next
    SKIPPED = "skipped"  # held back by quiet hours and overtaken by events


class Notice(SQLModel, table=True):
    __tablename__ = "notices"
    __table_args__ = (
        UniqueConstraint("subject", "kind", "channel"),
        Index("ix_notices_order", "order_id", "created_at"),
        Index("ix_notices_status", "status", "created_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    order_id: str = Field(foreign_key="orders.id", max_length=36)
    shipment_id: str | None = Field(default=None, max_length=36)
    subject: str = Field(max_length=120)
    kind: str = Field(max_length=24)
    channel: str = Field(max_length=16)
    to: str = Field(max_length=500)  # the address, number or URL: never shown on the page
    language: str = Field(max_length=8)
    context: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))
    urgent: bool = False
    trigger: str = Field(max_length=64, description="the timeline entry that caused it")
    triggered_at: datetime = Field(sa_type=UTCDateTime, description="when it was detected")
    not_before: datetime = Field(sa_type=UTCDateTime, description="quiet hours hold it till")
    status: str = Field(default=NoticeStatus.PENDING, max_length=16)
    attempts: int = 0
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    provider_id: str | None = Field(default=None, max_length=200)
    error: str | None = Field(default=None, max_length=1000)
    fallback_of: str | None = Field(default=None, max_length=36)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CaseKind(StrEnum):
    NOT_DELIVERED = "not_delivered"
    DAMAGED = "damaged"
    WRONG_ITEM = "wrong_item"


class CaseStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Case(SQLModel, table=True):
    """A problem a customer reported; its thread is the whole story of the order."""

    __tablename__ = "cases"
    __table_args__ = (Index("ix_cases_status", "status", "opened_at"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    order_id: str = Field(foreign_key="orders.id", index=True, max_length=36)
    kind: str = Field(max_length=24)
    status: str = Field(default=CaseStatus.OPEN, max_length=16)
    opened_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolution: str | None = Field(default=None, max_length=2000)


class CaseMessage(SQLModel, table=True):
    __tablename__ = "case_messages"

    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(foreign_key="cases.id", index=True, max_length=36)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    author: str = Field(max_length=64, description="'customer' or the staff key's name")
    body: str = Field(sa_column=Column(Text, nullable=False))
