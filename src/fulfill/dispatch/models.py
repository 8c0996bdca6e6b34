"""Vans, same-day waves, their route plans, and what the drivers report."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from fulfill.db import JSONType, UTCDateTime, utcnow


class WaveStatus(StrEnum):
    OPEN = "open"  # orders still join it
    CLOSED = "closed"  # its cutoff has passed: planned, not yet dispatched
    PUBLISHED = "published"  # a plan went out to the drivers


class PlanStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    SUPERSEDED = "superseded"  # a later version was published


class StopStatus(StrEnum):
    PLANNED = "planned"
    ARRIVED = "arrived"
    DELIVERED = "delivered"
    FAILED = "failed"

    @property
    def done(self) -> bool:
        return self in (StopStatus.DELIVERED, StopStatus.FAILED)


class RouteStatus(StrEnum):
    PLANNED = "planned"
    STARTED = "started"
    FINISHED = "finished"


class Van(SQLModel, table=True):
    """A delivery van of an own node; its shift is in the node's local time."""

    __tablename__ = "vans"
    __table_args__ = (
        CheckConstraint("capacity_parcels > 0", name="vans_capacity_parcels_positive"),
        CheckConstraint("capacity_kg > 0", name="vans_capacity_kg_positive"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True, index=True)
    node_id: int = Field(foreign_key="nodes.id", index=True)
    capacity_parcels: int
    capacity_kg: float
    shift_start: str = Field(max_length=5, description="HH:MM, local")
    shift_end: str = Field(max_length=5, description="HH:MM, local")
    cost_per_km: float = 0.5
    cost_per_hour: float = 0.0
    fixed_cost: float = 0.0
    max_stops: int | None = None
    break_start: str | None = Field(default=None, max_length=5, description="HH:MM, earliest")
    break_end: str | None = Field(default=None, max_length=5, description="HH:MM, latest start")
    break_minutes: int | None = None
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Wave(SQLModel, table=True):
    """The same-day fulfillments of one node that leave after one cutoff.

    ``version`` counts the plans asked for (``requested_by`` says who asked last);
    ``planned_version`` is the newest request answered. The difference is work to do, kept as a
    row so that a lost task costs a sweep, not a plan. ``plan_seq`` numbers the stored plans
    (planned, moved or re-planned) and is separate, so a move never swallows a request.
    """

    __tablename__ = "waves"
    __table_args__ = (
        UniqueConstraint("node_id", "cutoff_at"),
        Index("ix_waves_due", "status", "cutoff_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    node_id: int = Field(foreign_key="nodes.id", index=True)
    local_date: str = Field(max_length=10, description="the node's local date, YYYY-MM-DD")
    cutoff_at: datetime = Field(sa_type=UTCDateTime)
    status: str = Field(default=WaveStatus.OPEN, max_length=16)
    version: int = 0
    planned_version: int = 0
    requested_by: str | None = Field(default=None, max_length=16)
    plan_seq: int = 0
    planning_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    live_rev: str | None = Field(
        default=None, max_length=36, description="changes whenever its live plan changes"
    )
    polished_rev: str | None = Field(
        default=None, max_length=36, description="the live plan's revision last polished"
    )
    polish_until: datetime | None = Field(
        default=None, sa_type=UTCDateTime, description="no other polish before then"
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class LiveStop(SQLModel, table=True):
    """A fulfillment of a wave in the wave's live plan: the plan its same-day promise was made
    against, kept from the wave's first order to its cutoff. ``van_code`` is None for a stop
    that joined without a place (re-sourced, or moved in from an earlier wave)."""

    __tablename__ = "live_stops"
    __table_args__ = (Index("ix_live_stops_wave_van", "wave_id", "van_code", "position"),)

    fulfillment_id: str = Field(foreign_key="fulfillments.id", primary_key=True, max_length=36)
    wave_id: int = Field(foreign_key="waves.id")
    van_code: str | None = Field(default=None, max_length=32)
    position: int = 0


class LiveRoute(SQLModel, table=True):
    """When a van of a wave's live plan leaves and is back: the hours it books for the day's
    other waves, before any plan of them is published."""

    __tablename__ = "live_routes"

    wave_id: int = Field(foreign_key="waves.id", primary_key=True)
    van_code: str = Field(max_length=32, primary_key=True)
    depart_at: datetime = Field(sa_type=UTCDateTime)
    return_at: datetime = Field(sa_type=UTCDateTime)


class Plan(SQLModel, table=True):
    __tablename__ = "plans"
    __table_args__ = (UniqueConstraint("wave_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    wave_id: int = Field(foreign_key="waves.id", index=True)
    version: int
    request: int | None = Field(default=None, description="the wave's plan request it answers")
    status: str = Field(default=PlanStatus.DRAFT, max_length=16)
    origin: str = Field(max_length=16, description="cutoff, order, dispatcher or move")
    engine: str = Field(max_length=16)
    cost: float = 0.0
    distance_m: int = 0
    duration_s: int = 0
    vans_used: int = 0
    stops: int = 0
    unassigned: int = 0
    solve_seconds: float = 0.0
    warnings: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class PlanRoute(SQLModel, table=True):
    __tablename__ = "plan_routes"
    __table_args__ = (UniqueConstraint("plan_id", "van_id"),)

    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="plans.id", index=True)
    van_id: int = Field(foreign_key="vans.id", index=True)
    locked: bool = False
    status: str = Field(default=RouteStatus.PLANNED, max_length=16)
    depart_at: datetime = Field(sa_type=UTCDateTime)
    return_at: datetime = Field(sa_type=UTCDateTime)
    distance_m: int = 0
    duration_s: int = 0
    cost: float = 0.0
    load: list[int] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    rest: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType, nullable=True))
    last_lat: float | None = None
    last_lon: float | None = None
    last_seen_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    pace: float = Field(
        default=1.0, description="how much longer than the travel model the van's legs take"
    )


class PlanStop(SQLModel, table=True):
    """A fulfillment in a plan: on a route at a position, or unassigned with the reason."""

    __tablename__ = "plan_stops"
    __table_args__ = (
        UniqueConstraint("plan_id", "fulfillment_id"),
        Index("ix_plan_stops_route_position", "route_id", "position"),
    )

    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="plans.id", index=True)
    route_id: int | None = Field(default=None, foreign_key="plan_routes.id")
    position: int = 0
    fulfillment_id: str = Field(foreign_key="fulfillments.id", index=True, max_length=36)
    order_id: str = Field(foreign_key="orders.id", max_length=36)
    lat: float
    lon: float
    window_start: datetime = Field(sa_type=UTCDateTime)
    window_end: datetime = Field(sa_type=UTCDateTime)
    eta: datetime | None = Field(default=None, sa_type=UTCDateTime)
    departure: datetime | None = Field(default=None, sa_type=UTCDateTime)
    wait_s: int = 0
    parcels: int = 1
    weight_kg: float = 0.0
    status: str = Field(default=StopStatus.PLANNED, max_length=16)
    late: bool = False
    unassigned_reason: str | None = Field(default=None, max_length=500)
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    outcome: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType, nullable=True))


class DriverEvent(SQLModel, table=True):
    """Every report from a van, once: the event id makes a replay change nothing."""

    __tablename__ = "driver_events"
    __table_args__ = (UniqueConstraint("source", "event_id"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=64, description="the API key's name")
    event_id: str = Field(max_length=128)
    kind: str = Field(max_length=32)
    van_code: str = Field(max_length=32)
    fulfillment_id: str | None = Field(default=None, max_length=36)
    at: datetime = Field(sa_type=UTCDateTime)
    lat: float | None = None
    lon: float | None = None
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
