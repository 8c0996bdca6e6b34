from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fulfill.inputs import ClockTime, CreateModel, IanaTimezone, OneLine, Sku, UtcDatetime
from fulfill.orders.models import FulfillmentStatus, OrderStatus, ServiceLevel


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    WEBHOOK = "webhook"


class QuietHours(CreateModel):
    """Local times; ``start`` after ``end`` spans midnight (21:00 to 08:00)."""

    start: ClockTime
    end: ClockTime

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.start == self.end:
            raise ValueError("quiet hours start and end at the same time")
        return self


class Customer(CreateModel):
    name: OneLine = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    phone: str | None = Field(
        default=None, pattern=r"^\+[1-9][0-9]{6,14}$", description="E.164, e.g. +15550100"
    )
    channels: list[Channel] = Field(
        default_factory=lambda: [Channel.EMAIL],
        max_length=3,
        description="in the order the customer prefers them: a failing one falls back to the next",
    )
    language: str = Field(default="en", pattern=r"^[a-z]{2}(-[A-Z]{2})?$")
    quiet_hours: QuietHours | None = Field(
        default=None, description="when only urgent notices may reach the customer"
    )
    timezone: IanaTimezone | None = Field(
        default=None, description="the customer's, for quiet hours; else the shipping node's"
    )

    @model_validator(mode="after")
    def _channels_have_contacts(self) -> Self:
        if Channel.EMAIL in self.channels and not self.email:
            raise ValueError("the email channel needs an email address")
        if Channel.SMS in self.channels and not self.phone:
            raise ValueError("the sms channel needs a phone number")
        return self


class Address(CreateModel):
    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str | None = Field(default=None, max_length=20)
    region: str | None = Field(default=None, max_length=100)
    country: str = Field(default="CA", pattern=r"^[A-Z]{2}$")

    def one_line(self) -> str:
        parts = [self.line1, self.line2, self.city, self.region, self.postal_code, self.country]
        return ", ".join(p for p in parts if p)


class Destination(CreateModel):
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    address: Address | None = None

    @model_validator(mode="after")
    def _located(self) -> Self:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give both lat and lon, or neither")
        if self.lat is None and self.address is None:
            raise ValueError("give lat and lon, or an address")
        return self


class OrderLineCreate(CreateModel):
    sku: Sku
    quantity: int = Field(ge=1, le=10_000)


class OrderCreate(CreateModel):
    external_id: OneLine = Field(min_length=1, max_length=128, description="the storefront's id")
    customer: Customer
    destination: Destination
    service_level: ServiceLevel
    lines: list[OrderLineCreate] = Field(min_length=1, max_length=100)


class OrderCancel(CreateModel):
    reason: str | None = Field(default=None, max_length=500)


class Promise(BaseModel):
    service_level: ServiceLevel
    window_start: datetime
    window_end: datetime
    order_by: datetime | None = Field(
        description="placed by then to keep this window: the wave cutoff for same day, "
        "the shipping node's local midnight otherwise"
    )


class LinePublic(BaseModel):
    sku: str
    quantity: int


class FulfillmentPublic(BaseModel):
    id: str
    node: str
    status: FulfillmentStatus
    lines: list[LinePublic]


class TimelineEntry(BaseModel):
    at: datetime
    kind: str
    data: dict[str, Any]


class OrderPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"description": "an order as its storefront sees it"}
    )

    id: str
    external_id: str
    status: OrderStatus
    service_level: ServiceLevel
    customer: dict[str, Any]
    destination: dict[str, Any]
    promise: Promise
    lines: list[LinePublic]
    fulfillments: list[FulfillmentPublic]
    created_at: datetime
    updated_at: datetime
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    tracking_url: str = Field(description="the customer's tracking page of this order")


class OrderQuery(BaseModel):
    """The filters and the page of ``GET /v1/orders``, taken from the query string."""

    status: OrderStatus | None = None
    service_level: ServiceLevel | None = None
    external_id: str | None = Field(None, max_length=128)
    created_from: UtcDatetime | None = None
    created_to: UtcDatetime | None = None
    cursor: str | None = Field(None, max_length=256)
    limit: int = Field(50, ge=1, le=200)


class OrderPage(BaseModel):
    items: list[OrderPublic]
    next_cursor: Annotated[str | None, Field(description="pass as ?cursor= for the next page")]
