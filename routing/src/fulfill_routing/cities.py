"""Seeded same-day city waves of any size, for scaling runs and benchmarks."""

from __future__ import annotations

import numpy as np

from fulfill_routing.model import Depot, Location, Problem, Stop, TimeWindow, Vehicle

HOUR = 3600


def city_wave(
    stops: int,
    vans: int,
    *,
    seed: int = 0,
    centre: tuple[float, float] = (53.5461, -113.4938),
    radius_km: float = 15.0,
    window_hours: float = 2.0,
) -> Problem:
    """A depot near the centre, stops spread like a city (denser downtown), each with a
    ``window_hours`` delivery window between 10:00 and 20:00; vans carry 80 parcels and 600 kg,
    on shift 09:00-21:00. Costs are per metre driven. Times are seconds after midnight."""
    rng = np.random.default_rng(seed)
    distance = radius_km * np.sqrt(rng.beta(1.2, 2.0, size=stops))
    bearing = rng.uniform(0, 2 * np.pi, size=stops)
    lat = centre[0] + distance * np.cos(bearing) / 111.2
    lon = centre[1] + distance * np.sin(bearing) / (111.2 * np.cos(np.radians(centre[0])))
    locations = [Location(lat=centre[0] + 0.02, lon=centre[1] - 0.03)]
    locations += [Location(lat=float(a), lon=float(b)) for a, b in zip(lat, lon, strict=True)]
    span = int(window_hours * HOUR)
    opens = rng.integers(10 * HOUR, 20 * HOUR - span + 1, size=stops) // 900 * 900
    kg = rng.gamma(2.0, 2.5, size=stops).clip(0.2, 30).round().astype(int) + 1
    return Problem(
        name=f"city-{stops}-{vans}-{seed}",
        depots=(Depot(id="depot", location=0),),
        vehicles=tuple(
            Vehicle(
                id=f"van{k + 1:02d}",
                start_depot="depot",
                capacity=(80, 600),
                shift=TimeWindow(start=9 * HOUR, end=21 * HOUR),
                distance_cost=1,
            )
            for k in range(vans)
        ),
        stops=tuple(
            Stop(
                id=f"s{i + 1}",
                location=i + 1,
                service_time=int(rng.integers(120, 300)),
                time_windows=(TimeWindow(start=int(opens[i]), end=int(opens[i]) + span),),
                demand=(1, int(kg[i])),
            )
            for i in range(stops)
        ),
        locations=tuple(locations),
    )
