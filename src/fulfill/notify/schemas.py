"""API shapes of the tracking page, notices, cases and the service figures."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from fulfill.inputs import CreateModel
from fulfill.notify.models import CaseKind


class PageEvent(BaseModel):
    at: datetime
    at_text: str = Field(description="when, in the customer's timezone and language")
    status: str
    text: str = Field(description="in the customer's language")
    place: str | None = Field(description="the carrier's scan location (never the door)")


class VanProgress(BaseModel):
    started: bool = Field(description="the van has left the depot")
    stops_before: int = Field(description="deliveries the van makes before this one")
    stops_done: int
    stops_total: int


class PageParcel(BaseModel):
    status: str
    text: str
    carrier: str
    tracking_number: str | None = Field(description="a carrier's number; none for our own vans")
    eta_window: list[datetime] | None
    eta_text: str | None
    late: bool
    van: VanProgress | None = Field(description="our own vans only")
    timeline: list[PageEvent]


class TrackingView(BaseModel):
    """Everything the public tracking page shows: nothing personal but a first name and a
    town."""

    first_name: str
    town: str | None
    order_ref: str
    language: str
    status: str
    headline: str
    promised_window: list[datetime]
    promised_text: str
    late: bool
    parcels: list[PageParcel]
    problem_kinds: list[str]
    open_case: bool


class ProblemReport(CreateModel):
    kind: CaseKind
    message: str = Field(default="", max_length=2000)


class CaseOpened(BaseModel):
    case: str
    status: str


class NoticePublic(BaseModel):
    id: str
    order: str
    shipment: str | None
    kind: str
    channel: str
    status: str = Field(description="pending, sent, failed or skipped")
    language: str
    trigger: str
    triggered_at: datetime
    not_before: datetime
    sent_at: datetime | None
    attempts: int
    error: str | None
    fallback_of: str | None
    dead: bool = Field(description="failed and no other channel took it: replayable")


class ThreadItem(BaseModel):
    at: datetime
    type: str = Field(description="event (the order's timeline), notice, or message")
    kind: str
    channel: str | None = None
    status: str | None = None
    author: str | None = None
    subject: str | None = None
    text: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class CasePublic(BaseModel):
    id: str
    order: str
    order_ref: str
    kind: str
    status: str
    opened_at: datetime
    closed_at: datetime | None
    resolution: str | None
    thread: list[ThreadItem] | None = Field(
        default=None, description="the whole story of the order and every message, in order"
    )


class CaseMessageCreate(CreateModel):
    body: str = Field(min_length=1, max_length=5000)


class CaseClose(CreateModel):
    resolution: str = Field(min_length=1, max_length=2000)


class AlertResponse(BaseModel):
    alerts: int
    notified: int = Field(description="alerts with a notice sent")
    p50_s: float | None
    p90_s: float | None
    p99_s: float | None
    max_s: float | None


class LateTold(BaseModel):
    late: int = Field(description="late deliveries: late now, or delivered after the window")
    told_before_window_end: int
    share_told_before: float | None
    median_lead_s: float | None = Field(description="how long before the window ended")


class SameDayPromises(BaseModel):
    placed: int = Field(description="same-day orders placed in the period")
    kept: int = Field(description="delivered within the window first given at checkout")
    kept_share: float | None
    early: int = Field(description="delivered before the window first given began")
    moved: dict[str, int] = Field(description="orders moved to a later round, by recorded cause")
    late: dict[str, int] = Field(description="promises not kept, by cause")
    told_late: int = Field(description="orders whose customer was told 'running late'")
    false_alarms: int = Field(description="told 'running late', delivered within the window")
    rescued: int = Field(0, description="handed to another van when theirs broke down or stalled")
    rescued_kept: int = Field(0, description="rescued and delivered within the window first given")


class PromiseFigures(BaseModel):
    same_day: SameDayPromises


class ServiceFigures(BaseModel):
    since: datetime
    until: datetime
    detection_to_first_notice: dict[str, AlertResponse] = Field(
        description="per alert kind, and 'all'"
    )
    late_deliveries: LateTold
    orders: int
    notices_sent: int
    notices_per_order: float | None
    notices_by_kind: dict[str, int]
    notices_by_channel: dict[str, int]
    notices_failed: int
    dead_letters: int
    cases_opened: int
    cases_by_kind: dict[str, int]
    cases_open: int
    promises: PromiseFigures
