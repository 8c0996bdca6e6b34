"""The routing problem and its solution: typed, validated, and JSON round-trippable.

All quantities are integers: times in seconds (or the benchmark's time unit) from a reference
instant the caller chooses, distances in metres (or benchmark units), costs in integer cost
units. Stops and vehicles refer to locations by index into the travel matrix.

A stop's ``demand`` is delivered from the vehicle's start depot, except for the two stops of
a pickup-and-delivery pair: the pickup loads its demand and the delivery unloads it.
"""

from __future__ import annotations

from typing import Annotated, Any, Self

import numpy as np
import numpy.typing as npt
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
    field_validator,
    model_validator,
)


class Base(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class TimeWindow(Base):
    start: int = Field(ge=0)
    end: int = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end < self.start:
            raise ValueError(f"time window ends ({self.end}) before it starts ({self.start})")
        return self


class Location(Base):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class Depot(Base):
    id: str = Field(min_length=1)
    location: int = Field(ge=0)


class Break(Base):
    """A rest of ``duration`` that must start within ``window``, taken between two stops."""

    window: TimeWindow
    duration: int = Field(gt=0)


class Vehicle(Base):
    id: str = Field(min_length=1)
    start_depot: str
    end_depot: str | None = Field(default=None, description="default: the start depot")
    capacity: tuple[int, ...] = Field(default=(), description="per dimension, e.g. kg, l, parcels")
    shift: TimeWindow
    distance_cost: int = Field(default=1, ge=0, description="per distance unit")
    duration_cost: int = Field(default=0, ge=0, description="per time unit, depot to depot")
    fixed_cost: int = Field(default=0, ge=0, description="if the vehicle is used")
    max_stops: int | None = Field(default=None, ge=1)
    max_duration: int | None = Field(default=None, ge=0)
    rest: Break | None = Field(default=None, alias="break")

    @property
    def end(self) -> str:
        return self.end_depot or self.start_depot


class Stop(Base):
    id: str = Field(min_length=1)
    location: int = Field(ge=0)
    service_time: int = Field(default=0, ge=0)
    time_windows: tuple[TimeWindow, ...] = Field(
        default=(), description="service starts within one of them; none means any time"
    )
    demand: tuple[int, ...] = Field(default=(), description="per capacity dimension")
    penalty: int | None = Field(
        default=None, ge=0, description="cost of leaving the stop unserved; None: must be served"
    )

    @field_validator("time_windows")
    @classmethod
    def _sorted_and_merged(cls, windows: tuple[TimeWindow, ...]) -> tuple[TimeWindow, ...]:
        """Every component reads windows in time order, with no overlap."""
        merged: list[TimeWindow] = []
        for window in sorted(windows, key=lambda w: (w.start, w.end)):
            if merged and window.start <= merged[-1].end + 1:
                last = merged[-1]
                merged[-1] = TimeWindow(start=last.start, end=max(last.end, window.end))
            else:
                merged.append(window)
        return tuple(merged)

    @property
    def required(self) -> bool:
        return self.penalty is None


class PickupDelivery(Base):
    pickup: str
    delivery: str


def _as_matrix(value: Any) -> IntArray:
    try:
        array = np.array(value, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise ValueError("must be a square array of integers") from None
    if array.ndim != 2 or array.shape[0] != array.shape[1]:
        raise ValueError(f"must be square, got shape {array.shape}")
    if array.size and array.min() < 0:
        raise ValueError("must not have negative entries")
    array.setflags(write=False)
    return array


IntArray = npt.NDArray[np.int64]
SquareMatrix = Annotated[
    IntArray,
    PlainValidator(_as_matrix),
    PlainSerializer(lambda a: a.tolist(), return_type=list[list[int]]),
    WithJsonSchema({"type": "array", "items": {"type": "array", "items": {"type": "integer"}}}),
]


class Matrix(Base):
    """Travel between locations: ``distances[i, j]`` and ``durations[i, j]`` (read-only)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    distances: SquareMatrix
    durations: SquareMatrix

    @model_validator(mode="after")
    def _same_shape(self) -> Self:
        if self.distances.shape != self.durations.shape:
            raise ValueError("matrix.durations must have the shape of matrix.distances")
        return self

    @property
    def size(self) -> int:
        return int(self.distances.shape[0])


class Problem(Base):
    """A wave to plan. Either ``matrix`` is given, or ``locations`` (lat/lon) from which a
    travel-time provider builds it."""

    name: str = ""
    depots: tuple[Depot, ...] = Field(min_length=1)
    vehicles: tuple[Vehicle, ...] = Field(min_length=1)
    stops: tuple[Stop, ...] = ()
    pairs: tuple[PickupDelivery, ...] = ()
    locations: tuple[Location, ...] | None = None
    matrix: Matrix | None = None
    fixed_routes: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="vehicle id -> stops it must serve first, in order"
    )
    initial_routes: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="a previous plan to start the search from"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _check_unique("depots", [d.id for d in self.depots])
        _check_unique("vehicles", [v.id for v in self.vehicles])
        _check_unique("stops", [s.id for s in self.stops])
        size = self._location_count()
        depot_ids = {d.id for d in self.depots}
        for i, depot in enumerate(self.depots):
            _check_location(f"depots[{i}].location", depot.location, size)
        dims = len(self.vehicles[0].capacity)
        for i, vehicle in enumerate(self.vehicles):
            for field, depot_id in (
                ("start_depot", vehicle.start_depot),
                ("end_depot", vehicle.end),
            ):
                if depot_id not in depot_ids:
                    raise ValueError(f"vehicles[{i}].{field}: no depot {depot_id!r}")
            if len(vehicle.capacity) != dims:
                raise ValueError(
                    f"vehicles[{i}].capacity has {len(vehicle.capacity)} dimensions, "
                    f"vehicles[0] has {dims}"
                )
        for i, stop in enumerate(self.stops):
            _check_location(f"stops[{i}].location", stop.location, size)
            if stop.demand and len(stop.demand) != dims:
                raise ValueError(
                    f"stops[{i}].demand has {len(stop.demand)} dimensions, "
                    f"the vehicles' capacity has {dims}"
                )
            if any(d < 0 for d in stop.demand):
                raise ValueError(f"stops[{i}].demand must not be negative")
        self._check_pairs()
        self._check_routes("fixed_routes", self.fixed_routes)
        self._check_routes("initial_routes", self.initial_routes)
        return self

    def _location_count(self) -> int:
        if self.matrix is not None:
            if self.locations is not None and len(self.locations) != self.matrix.size:
                raise ValueError("locations and matrix must describe the same places")
            return self.matrix.size
        if self.locations is None:
            raise ValueError("give a matrix, or locations to build one from")
        return len(self.locations)

    def _check_pairs(self) -> None:
        stops = self.stop_index()
        seen: set[str] = set()
        for i, pair in enumerate(self.pairs):
            for field in ("pickup", "delivery"):
                stop_id = getattr(pair, field)
                if stop_id not in stops:
                    raise ValueError(f"pairs[{i}].{field}: no stop {stop_id!r}")
                if stop_id in seen:
                    raise ValueError(f"pairs[{i}].{field}: stop {stop_id!r} is in two pairs")
                seen.add(stop_id)
            pickup, delivery = self.stops[stops[pair.pickup]], self.stops[stops[pair.delivery]]
            if pickup.demand != delivery.demand:
                raise ValueError(f"pairs[{i}]: the delivery must unload what the pickup loads")
            if pickup.required != delivery.required:
                raise ValueError(f"pairs[{i}]: both stops are required, or both optional")

    def _check_routes(self, field: str, routes: dict[str, tuple[str, ...]]) -> None:
        vehicles = {v.id for v in self.vehicles}
        stops = self.stop_index()
        seen: set[str] = set()
        for vehicle_id, stop_ids in routes.items():
            if vehicle_id not in vehicles:
                raise ValueError(f"{field}: no vehicle {vehicle_id!r}")
            for stop_id in stop_ids:
                if stop_id not in stops:
                    raise ValueError(f"{field}[{vehicle_id!r}]: no stop {stop_id!r}")
                if stop_id in seen:
                    raise ValueError(f"{field}: stop {stop_id!r} is on two routes")
                seen.add(stop_id)

    # Lookups the engines and the checker share.

    def stop_index(self) -> dict[str, int]:
        return {s.id: i for i, s in enumerate(self.stops)}

    def depot_index(self) -> dict[str, int]:
        return {d.id: i for i, d in enumerate(self.depots)}

    def demand_of(self, stop: Stop) -> tuple[int, ...]:
        return stop.demand or (0,) * self.dimensions

    @property
    def dimensions(self) -> int:
        return len(self.vehicles[0].capacity)

    def paired(self) -> dict[str, str]:
        """stop id -> 'pickup' or 'delivery', for stops in a pair."""
        roles = {p.pickup: "pickup" for p in self.pairs}
        roles.update({p.delivery: "delivery" for p in self.pairs})
        return roles


def _check_unique(field: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for i, value in enumerate(ids):
        if value in seen:
            raise ValueError(f"{field}[{i}].id {value!r} is not unique")
        seen.add(value)


def _check_location(field: str, index: int, size: int) -> None:
    if index >= size:
        raise ValueError(f"{field} is {index}, but there are only {size} locations")


# The solution.


class Visit(Base):
    stop: str
    arrival: int
    start: int = Field(description="service start")
    departure: int
    wait: int = Field(ge=0)
    slack: int = Field(ge=0, description="how much later service could start, route unchanged")


class RouteBreak(Base):
    start: int
    duration: int
    after: int = Field(description="number of visits before the break")


class Route(Base):
    vehicle: str
    visits: tuple[Visit, ...]
    start: int = Field(description="departure from the start depot")
    end: int = Field(description="arrival at the end depot")
    distance: int
    duration: int
    cost: int
    peak_load: tuple[int, ...] = ()
    rest: RouteBreak | None = Field(default=None, alias="break")


class Unserved(Base):
    stop: str
    reason: str


class Solution(Base):
    routes: tuple[Route, ...]
    unserved: tuple[Unserved, ...] = ()
    cost: int
    distance: int
    engine: str
    seconds: float = 0.0
    feasible: bool = True

    @property
    def vehicles_used(self) -> int:
        return sum(1 for r in self.routes if r.visits)
