from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, RootModel, field_validator

from fulfill.inputs import ClockTime, CreateModel, IanaTimezone, NodeCode, Quantity, Sku
from fulfill.inventory.models import MovementReason, NodeKind


class ProductCreate(CreateModel):
    sku: Sku
    name: str = Field(min_length=1, max_length=200)
    weight_kg: float = Field(gt=0, le=1000)
    length_cm: float | None = Field(default=None, gt=0, le=1000)
    width_cm: float | None = Field(default=None, gt=0, le=1000)
    height_cm: float | None = Field(default=None, gt=0, le=1000)


class ProductPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    sku: str
    name: str
    weight_kg: float
    length_cm: float | None
    width_cm: float | None
    height_cm: float | None
    created_at: datetime


class NodeCreate(CreateModel):
    code: NodeCode
    name: str = Field(min_length=1, max_length=200)
    kind: NodeKind
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    timezone: IanaTimezone
    same_day_radius_km: float = Field(default=0.0, ge=0, le=500)
    wave_cutoffs: list[ClockTime] = Field(default_factory=list, max_length=48)
    pick_capacity_per_day: int | None = Field(
        default=None, ge=0, le=10_000_000, description="units it can pick in a local day"
    )

    @field_validator("wave_cutoffs")
    @classmethod
    def _cutoffs_sorted_once(cls, values: list[str]) -> list[str]:
        return sorted(set(values))


class NodePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    kind: NodeKind
    lat: float
    lon: float
    timezone: str
    same_day_radius_km: float
    wave_cutoffs: list[str]
    pick_capacity_per_day: int | None
    active: bool
    created_at: datetime


class StockLevelSet(CreateModel):
    sku: Sku
    on_hand: Quantity


class StockAdjustmentCreate(CreateModel):
    sku: Sku
    delta: int = Field(ge=-10_000_000, le=10_000_000, description="units added (+) or removed (-)")
    reason: MovementReason
    note: str | None = Field(default=None, max_length=500)

    @field_validator("delta")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("delta must not be zero")
        return value

    @field_validator("reason")
    @classmethod
    def _not_internal(cls, value: MovementReason) -> MovementReason:
        if value in (MovementReason.RESERVATION, MovementReason.RELEASE, MovementReason.COUNT):
            raise ValueError(f"reason {value.value!r} is recorded by the service itself")
        return value


class StockPublic(BaseModel):
    node: str
    sku: str
    on_hand: int
    reserved: int
    available: int
    updated_at: datetime


class StockMovementPublic(BaseModel):
    id: int
    node: str
    sku: str
    on_hand_delta: int
    reserved_delta: int
    on_hand_after: int
    reserved_after: int
    reason: str
    note: str | None
    order_id: str | None
    created_at: datetime


class StockLevels(RootModel[Annotated[list[StockLevelSet], Field(min_length=1, max_length=1000)]]):
    pass


class StockAdjustments(
    RootModel[Annotated[list[StockAdjustmentCreate], Field(min_length=1, max_length=1000)]]
):
    pass


class StockList(RootModel[list[StockPublic]]):
    pass
