"""The cities a demo day can run in: real places for the warehouse, two stores and the
third party's fulfilment centre, and where the customers live."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class City:
    name: str
    timezone: str
    centre: tuple[float, float]
    spread: tuple[float, float]  # degrees of latitude and longitude, one standard deviation
    nodes: tuple[dict[str, Any], ...]  # as POST /v1/nodes takes them, without the timezone


_OWN_CUTOFFS = {
    "warehouse": ["09:00", "11:00", "13:00", "15:00", "17:00"],
    "store": ["12:00", "16:00", "19:00"],
}

CITIES: dict[str, City] = {
    "edmonton": City(
        "Edmonton",
        "America/Edmonton",
        (53.5461, -113.4938),
        (0.05, 0.09),
        (
            {
                "code": "WH1",
                "name": "Main warehouse",
                "kind": "warehouse",
                "lat": 53.5730,
                "lon": -113.4210,
                "same_day_radius_km": 35,
            },
            {
                "code": "ST1",
                "name": "Whyte Ave store",
                "kind": "store",
                "lat": 53.5190,
                "lon": -113.4970,
                "same_day_radius_km": 12,
            },
            {
                "code": "ST2",
                "name": "West End store",
                "kind": "store",
                "lat": 53.5230,
                "lon": -113.6240,
                "same_day_radius_km": 12,
            },
            {
                "code": "FBA1",
                "name": "Amazon YEG1 (Nisku)",
                "kind": "third_party",
                "lat": 53.3370,
                "lon": -113.5270,
            },
        ),
    ),
    "montreal": City(
        "Montréal",
        "America/Toronto",
        (45.5088, -73.5878),
        (0.04, 0.07),
        (
            {
                "code": "WH1",
                "name": "Entrepôt Saint-Laurent",
                "kind": "warehouse",
                "lat": 45.5017,
                "lon": -73.7120,
                "same_day_radius_km": 35,
            },
            {
                "code": "ST1",
                "name": "Plateau store",
                "kind": "store",
                "lat": 45.5230,
                "lon": -73.5820,
                "same_day_radius_km": 10,
            },
            {
                "code": "ST2",
                "name": "Verdun store",
                "kind": "store",
                "lat": 45.4570,
                "lon": -73.5700,
                "same_day_radius_km": 10,
            },
            {
                "code": "FBA1",
                "name": "Amazon YUL2 (Lachine)",
                "kind": "third_party",
                "lat": 45.4430,
                "lon": -73.6930,
            },
        ),
    ),
}


def node_bodies(city: City) -> list[dict[str, Any]]:
    bodies = []
    for node in city.nodes:
        body = node | {"timezone": city.timezone}
        if node["kind"] in _OWN_CUTOFFS:
            body["wave_cutoffs"] = _OWN_CUTOFFS[node["kind"]]
        bodies.append(body)
    return bodies
