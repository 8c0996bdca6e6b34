"""Addresses to coordinates, through geopy's geocoder interface.

``FULFILL_GEOCODER`` names the geocoder: ``gazetteer`` (the default) answers offline from a
file of known addresses and postal codes, so the embedded default and the tests need no
network; any geopy service name (``nominatim``, ``photon``, ``google``, ...) uses that service,
with ``FULFILL_GEOCODER_OPTIONS`` passed to its constructor.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from geopy.exc import GeopyError
from geopy.geocoders import get_geocoder_for_service
from geopy.geocoders.base import Geocoder
from geopy.location import Location

from fulfill.config import Settings
from fulfill.errors import Unprocessable

_NOT_WORD = re.compile(r"[^0-9a-z]+")


def normalise(text: str) -> str:
    return " ".join(_NOT_WORD.sub(" ", text.lower()).split())


class Gazetteer(Geocoder):  # type: ignore[misc]  # geopy ships no type hints
    """An offline geocoder over known places: full addresses first, then postal codes.

    A query matches an entry when the entry's normalised name is the whole query, or when a
    postal-code entry appears in the query as whole words.
    """

    def __init__(self, places: Mapping[str, tuple[float, float]]) -> None:
        super().__init__()
        self._places = {normalise(name): point for name, point in places.items()}

    @classmethod
    def from_file(cls, path: Path | None) -> Gazetteer:
        raw = (
            path.read_text()
            if path is not None
            else resources.files("fulfill.data").joinpath("gazetteer.json").read_text()
        )
        entries = json.loads(raw)
        return cls({e["name"]: (float(e["lat"]), float(e["lon"])) for e in entries})

    def geocode(self, query: str, exactly_one: bool = True, timeout: Any = None) -> Any:
        key = normalise(query)
        point = self._places.get(key) or self._postal_match(key)
        if point is None:
            return None
        location = Location(query, point, {"query": query})
        return location if exactly_one else [location]

    def _postal_match(self, key: str) -> tuple[float, float] | None:
        padded = f" {key} "
        best: tuple[int, tuple[float, float]] | None = None
        for name, point in self._places.items():
            if f" {name} " in padded and (best is None or len(name) > best[0]):
                best = (len(name), point)
        return best[1] if best else None


@cache
def _geocoder(name: str, options_json: str, gazetteer_path: str | None) -> Geocoder:
    if name == "gazetteer":
        return Gazetteer.from_file(Path(gazetteer_path) if gazetteer_path else None)
    options = json.loads(options_json)
    options.setdefault("user_agent", "fulfill")
    geocoder: Geocoder = get_geocoder_for_service(name)(**options)
    return geocoder


def geocoder_for(settings: Settings) -> Geocoder:
    return _geocoder(
        settings.geocoder,
        json.dumps(settings.geocoder_options, sort_keys=True),
        str(settings.gazetteer_path) if settings.gazetteer_path else None,
    )


def geocode(geocoder: Geocoder, query: str, field: str) -> tuple[float, float]:
    """Coordinates of ``query``, or a 422 naming ``field`` when it cannot be found."""
    try:
        location = geocoder.geocode(query, exactly_one=True, timeout=10)
    except GeopyError as exc:
        raise Unprocessable(
            f"the address could not be geocoded now ({type(exc).__name__}); send lat and lon",
            field=field,
        ) from exc
    if location is None:
        raise Unprocessable(f"the address {query!r} could not be geocoded", field=field)
    return float(location.latitude), float(location.longitude)
