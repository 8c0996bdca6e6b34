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

from fulfill_routing.errors import OsrmError
from fulfill_routing.geo import haversine_between_km
from fulfill_routing.model import Location

IntArray = npt.NDArray[np.int64]

# km/h by hour of day for a mid-sized city: slow at the peaks, fast at night.
CITY_SPEEDS_KMH: tuple[float, ...] = (
    45,
    45,
    45,
    45,
    45,
    42,
    35,
    26,
    24,
    30,
    33,
    32,
    31,
    32,
    31,
    28,
    25,
    24,
    29,
    34,
    38,
    41,
    43,
    45,
)


class TravelTimeProvider(Protocol):
    def matrices(
        self, locations: Sequence[Location], departure_s: int = 0
    ) -> tuple[IntArray, IntArray]:
        """(distances in metres, durations in seconds) between every pair of locations, for
        travel starting ``departure_s`` seconds after local midnight."""
        ...

    def between(
        self, origins: Sequence[Location], targets: Sequence[Location], departure_s: int = 0
    ) -> tuple[IntArray, IntArray]:
        """The same from each origin (rows) to each target (columns) only."""
        ...


def with_location(
    travel: TravelTimeProvider,
    locations: Sequence[Location],
    matrices: tuple[IntArray, IntArray],
    extra: Location,
    departure_s: int = 0,
) -> tuple[IntArray, IntArray]:
    """``matrices`` of ``locations`` grown by one row and column for ``extra``, at the cost of
    2n pairs instead of (n + 1)^2: how one more stop is priced against a stored plan."""
    n = len(locations)
    out_d, out_t = travel.between([extra], locations, departure_s)
    in_d, in_t = travel.between(locations, [extra], departure_s)
    grown = []
    for base, out, into in ((matrices[0], out_d, in_d), (matrices[1], out_t, in_t)):
        matrix = np.zeros((n + 1, n + 1), dtype=np.int64)
        matrix[:n, :n] = base
        matrix[n, :n] = out[0]
        matrix[:n, n] = into[:, 0]
        grown.append(matrix)
    return grown[0], grown[1]


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
        return self.between(locations, locations, departure_s)

    def between(
        self, origins: Sequence[Location], targets: Sequence[Location], departure_s: int = 0
    ) -> tuple[IntArray, IntArray]:
        if self.circuity < 1:
            raise ValueError("circuity must be at least 1")
        km = haversine_between_km(
            [p.lat for p in origins],
            [p.lon for p in origins],
            [p.lat for p in targets],
            [p.lon for p in targets],
        )
        metres = km * 1000.0 * self.circuity
        speed_ms = self.profile.kmh_at(departure_s) / 3.6
        distances = np.rint(metres).astype(np.int64)
        durations = np.ceil(metres / speed_ms).astype(np.int64)
        return distances, durations


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

    def between(
        self, origins: Sequence[Location], targets: Sequence[Location], departure_s: int = 0
    ) -> tuple[IntArray, IntArray]:
        points = [*origins, *targets]
        rows, columns = range(len(origins)), range(len(origins), len(points))
        distances = np.zeros((len(rows), len(columns)), dtype=np.int64)
        durations = np.zeros_like(distances)
        # OSRM bounds sources x destinations by block^2: one origin may ask block^2 targets.
        across = max(1, self.block**2 // max(1, min(len(rows), self.block)))
        with httpx.Client(base_url=self.base_url, timeout=self.timeout_s) as client:
            for r in range(0, len(rows), self.block):
                for c in range(0, len(columns), across):
                    sources = rows[r : r + self.block]
                    wanted = columns[c : c + across]
                    d, t = self._fetch_block(client, points, sources, wanted)
                    distances[r : r + len(sources), c : c + len(wanted)] = d
                    durations[r : r + len(sources), c : c + len(wanted)] = t
        return distances, durations

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
