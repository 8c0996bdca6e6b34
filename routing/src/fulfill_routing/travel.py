"""Travel times and distances between locations, behind one interface.

``GreatCircle`` needs no server: great-circle distance times a circuity factor (roads are not
straight), driven at the speed a time-of-day profile gives for the wave's departure hour.
``OsrmTable`` asks an OSRM server's ``table`` service for real road times, in blocks, and
caches what it got.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import httpx
import numpy as np
import numpy.typing as npt

from fulfill_routing.geo import haversine_matrix_km
from fulfill_routing.model import Location

IntArray = npt.NDArray[np.int64]

# km/h by hour of day for a mid-sized city: slow at the peaks, fast at night.
CITY_SPEEDS_KMH: tuple[float, ...] = (
    45, 45, 45, 45, 45, 42, 35, 26, 24, 30, 33, 32,
    31, 32, 31, 28, 25, 24, 29, 34, 38, 41, 43, 45,
)  # fmt: skip


class TravelTimeProvider(Protocol):
    def matrices(
        self, locations: Sequence[Location], departure_s: int = 0
    ) -> tuple[IntArray, IntArray]:
        """(distances in metres, durations in seconds) between every pair of locations, for
        travel starting ``departure_s`` seconds after local midnight."""
        ...


@dataclass(frozen=True)
class SpeedProfile:
    kmh_by_hour: tuple[float, ...] = CITY_SPEEDS_KMH

    def __post_init__(self) -> None:
        if len(self.kmh_by_hour) != 24 or min(self.kmh_by_hour) <= 0:
            raise ValueError("a speed profile has 24 positive hourly speeds")

    def kmh_at(self, seconds_after_midnight: int) -> float:
        return self.kmh_by_hour[(seconds_after_midnight // 3600) % 24]


@dataclass(frozen=True)
class GreatCircle:
    circuity: float = 1.3
    profile: SpeedProfile = field(default_factory=SpeedProfile)

    def matrices(
        self, locations: Sequence[Location], departure_s: int = 0
    ) -> tuple[IntArray, IntArray]:
        if self.circuity < 1:
            raise ValueError("circuity must be at least 1")
        km = haversine_matrix_km([p.lat for p in locations], [p.lon for p in locations])
        metres = km * 1000.0 * self.circuity
        speed_ms = self.profile.kmh_at(departure_s) / 3.6
        distances = np.rint(metres).astype(np.int64)
        durations = np.ceil(metres / speed_ms).astype(np.int64)
        return distances, durations


class OsrmError(RuntimeError):
    """The OSRM server could not answer."""


@dataclass
class OsrmTable:
    """Road distances and times from an OSRM server (``/table/v1/{profile}``)."""

    base_url: str
    profile: str = "driving"
    block: int = 100  # OSRM's default max-table-size
    timeout_s: float = 30.0
    _cache: dict[str, tuple[IntArray, IntArray]] = field(default_factory=dict, repr=False)

    def matrices(
        self, locations: Sequence[Location], departure_s: int = 0
    ) -> tuple[IntArray, IntArray]:
        key = self._key(locations)
        if key not in self._cache:
            self._cache[key] = self._fetch(locations)
        return self._cache[key]

    def _key(self, locations: Sequence[Location]) -> str:
        text = ";".join(f"{p.lon:.6f},{p.lat:.6f}" for p in locations)
        return hashlib.sha256(f"{self.profile}|{text}".encode()).hexdigest()

    def _fetch(self, locations: Sequence[Location]) -> tuple[IntArray, IntArray]:
        n = len(locations)
        distances = np.zeros((n, n), dtype=np.int64)
        durations = np.zeros((n, n), dtype=np.int64)
        blocks = [range(i, min(i + self.block, n)) for i in range(0, n, self.block)]
        with httpx.Client(base_url=self.base_url, timeout=self.timeout_s) as client:
            for sources in blocks:
                for targets in blocks:
                    d, t = self._fetch_block(client, locations, sources, targets)
                    distances[np.ix_(sources, targets)] = d
                    durations[np.ix_(sources, targets)] = t
        return distances, durations

    def _fetch_block(
        self,
        client: httpx.Client,
        locations: Sequence[Location],
        sources: range,
        targets: range,
    ) -> tuple[IntArray, IntArray]:
        points = list(dict.fromkeys([*sources, *targets]))
        position = {p: i for i, p in enumerate(points)}
        coordinates = ";".join(f"{locations[p].lon:.6f},{locations[p].lat:.6f}" for p in points)
        params = {
            "sources": ";".join(str(position[s]) for s in sources),
            "destinations": ";".join(str(position[t]) for t in targets),
            "annotations": "duration,distance",
        }
        try:
            response = client.get(f"/table/v1/{self.profile}/{coordinates}", params=params)
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OsrmError(f"OSRM table request failed: {exc}") from exc
        if response.status_code != 200 or body.get("code") != "Ok":
            raise OsrmError(f"OSRM answered {response.status_code}: {body.get('message', body)}")
        return _as_ints(body["distances"], "distances"), _as_ints(body["durations"], "durations")


def _as_ints(rows: list[list[float | None]], name: str) -> IntArray:
    if any(value is None for row in rows for value in row):
        raise OsrmError(f"OSRM found no route between some points ({name} has nulls)")
    return np.asarray([[math.ceil(float(v)) for v in row] for row in rows], dtype=np.int64)  # type: ignore[arg-type]
