from __future__ import annotations

from datetime import datetime
from typing import Any, Self

from pydantic import BaseModel, Field, model_validator

from fulfill.dispatch.progress import DriverEventKind
from fulfill.inputs import MAX_ROW_ID, CreateModel, UtcDatetime

HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class VanCreate(CreateModel):
    code: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")
    node: str = Field(min_length=1, max_length=32, description="the code of an own node")
    capacity_parcels: int = Field(gt=0, le=10_000)
    capacity_kg: float = Field(gt=0, le=50_000)
    shift_start: str = Field(pattern=HHMM, description="local time, HH:MM")
    shift_end: str = Field(pattern=HHMM, description="local time, HH:MM")
    # Bounded far above any real van: the planner scales costs to integers.
    cost_per_km: float = Field(default=0.5, ge=0, le=1000)
    cost_per_hour: float = Field(default=0.0, ge=0, le=10_000)
    fixed_cost: float = Field(default=0.0, ge=0, le=1_000_000)
    max_stops: int | None = Field(default=None, ge=1, le=10_000)
    break_start: str | None = Field(default=None, pattern=HHMM)
    break_end: str | None = Field(default=None, pattern=HHMM)
    break_minutes: int | None = Field(default=None, gt=0, le=240)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.shift_end <= self.shift_start:
            raise ValueError("shift_end must be after shift_start")
        parts = (self.break_start, self.break_end, self.break_minutes)
        if any(p is not None for p in parts) and not all(p is not None for p in parts):
            raise ValueError("a break needs break_start, break_end and break_minutes")
        if self.break_start and self.break_end and self.break_end < self.break_start:
            raise ValueError("break_end must not be before break_start")
        return self


class VanPublic(BaseModel):
    code: str
    node: str
    capacity_parcels: int
    capacity_kg: float
    shift_start: str
    shift_end: str
    cost_per_km: float
    cost_per_hour: float
    fixed_cost: float
    max_stops: int | None
    break_start: str | None
    break_end: str | None
    break_minutes: int | None
    active: bool


class PlanSummary(BaseModel):
    id: int
    version: int
    status: str
    origin: str
    cost: float
    distance_km: float
    vans_used: int
    stops: int
    unassigned: int
    created_at: datetime


class WavePublic(BaseModel):
    id: int
    node: str
    local_date: str
    utc_offset_min: int = Field(description="the node's offset from UTC on that date")
    cutoff_at: datetime
    status: str
    version: int
    planned_version: int
    planning: bool = Field(description="a plan is being made now")
    fulfillments: int
    latest_plan: PlanSummary | None
    published_plan: PlanSummary | None


class Window(BaseModel):
    start: datetime
    end: datetime


class StopPublic(BaseModel):
    fulfillment: str
    order: str
    position: int
    lat: float
    lon: float
    window: Window
    eta: datetime | None
    departure: datetime | None
    wait_s: int
    status: str
    late: bool
    parcels: int
    weight_kg: float
    reason: str | None = Field(default=None, description="why no route serves it")
    done_at: datetime | None = None


class Position(BaseModel):
    lat: float
    lon: float
    at: datetime


class RoutePublic(BaseModel):
    van: str
    locked: bool
    status: str
    depart_at: datetime
    return_at: datetime
    distance_km: float
    duration_min: float
    cost: float
    load: dict[str, float]
    capacity: dict[str, float]
    rest: dict[str, Any] | None
    last_position: Position | None
    stops: list[StopPublic]


class PlanPublic(PlanSummary):
    wave: int
    node: str
    utc_offset_min: int = Field(description="the node's offset from UTC at the wave's cutoff")
    depot: Position | None
    engine: str
    duration_h: float
    solve_seconds: float
    warnings: list[str]
    published_at: datetime | None
    routes: list[RoutePublic]
    unassigned_stops: list[StopPublic]


class PlanRequested(BaseModel):
    wave: int
    version: int = Field(description="the plan version to expect at GET /v1/waves/{id}")


class MoveRequest(CreateModel):
    stop: str = Field(description="the fulfillment id of the stop")
    van: str | None = Field(description="the van to move it to; null: out of every route")
    position: int | None = Field(default=None, ge=0, description="0 is first; null: last")
    force: bool = Field(default=False, description="accept a move that breaks the plan")


class MoveResult(BaseModel):
    plan: PlanPublic
    warnings: list[str]


class LockRequest(CreateModel):
    locked: bool


class VanUpdate(CreateModel):
    active: bool = Field(
        description="false: out of service (broken down, in the garage); plans made from now on "
        "leave it out"
    )


class DriverEventIn(CreateModel):
    id: str = Field(min_length=1, max_length=128, description="unique per event: replays no-op")
    type: DriverEventKind
    van: str = Field(min_length=1, max_length=32)
    at: UtcDatetime
    stop: str | None = Field(default=None, description="fulfillment id, for stop events")
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    proof: dict[str, Any] | None = Field(
        default=None, description="e.g. {'signed_by': 'Ada', 'photo': 'url'}"
    )
    reason: str | None = Field(default=None, max_length=500)
    wave: int | None = Field(
        default=None,
        ge=1,
        le=MAX_ROW_ID,
        description="the wave whose route this is about; without it, a route_started is of the "
        "van's next route not yet on the road, and other events are about the route it drives",
    )

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give both lat and lon, or neither")
        if self.type.names_a_stop and not self.stop:
            raise ValueError(f"a {self.type.value} event needs its stop")
        if self.type is DriverEventKind.POSITION and self.lat is None:
            raise ValueError("a position event needs lat and lon")
        if self.type is DriverEventKind.FAILED and not self.reason:
            raise ValueError("a failed delivery needs its reason")
        return self


class DriverEventAccepted(BaseModel):
    id: str
    replayed: bool
    late: list[str] = Field(description="stops this event made late")
    wave: int | None = Field(description="the wave of the route it was applied to")
