from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np
import pytest

from fulfill_routing.errors import OsrmError
from fulfill_routing.geo import haversine_matrix_km
from fulfill_routing.model import Location
from fulfill_routing.travel import (
    GreatCircle,
    OsrmTable,
    SpeedProfile,
    TravelTimeProvider,
    with_location,
)

POINTS = [Location(lat=53.54 + 0.01 * i, lon=-113.49 - 0.013 * i) for i in range(7)]


def test_great_circle_applies_circuity_and_the_hourly_speed() -> None:
    provider = GreatCircle(circuity=1.25, profile=SpeedProfile(tuple([36.0] * 8 + [18.0] * 16)))
    distances, night = provider.matrices(POINTS, departure_s=3 * 3600)
    _, day = provider.matrices(POINTS, departure_s=9 * 3600)
    km = haversine_matrix_km([p.lat for p in POINTS], [p.lon for p in POINTS])
    assert np.array_equal(distances, np.rint(km * 1250).astype(np.int64))
    assert night[0, 1] == pytest.approx(distances[0, 1] / 10, abs=1)  # 36 km/h = 10 m/s
    assert day[0, 1] == pytest.approx(2 * night[0, 1], abs=2)
    assert np.all(np.diag(day) == 0)


@pytest.mark.parametrize("speeds", [(30.0,) * 23, (30.0,) * 23 + (0.0,)])
def test_a_speed_profile_has_24_positive_hours(speeds: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="24 positive"):
        SpeedProfile(speeds)


class FakeOsrm:
    """Answers /table/v1/driving like OSRM does: metres and seconds from straight lines."""

    def __init__(self, fail: bool = False) -> None:
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                url = urlsplit(self.path)
                if fail:
                    self.send_response(400)
                    body = {"code": "InvalidQuery", "message": "Too many table coordinates"}
                else:
                    self.send_response(200)
                    body = server.table(url.path, parse_qs(url.query))
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps(body).encode())

            def log_message(self, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}"

    def table(self, path: str, query: dict[str, list[str]]) -> dict[str, object]:
        pairs = unquote(path).rsplit("/", 1)[-1].split(";")
        points = [tuple(map(float, p.split(","))) for p in pairs]
        sources = [int(i) for i in query["sources"][0].split(";")]
        targets = [int(i) for i in query["destinations"][0].split(";")]
        km = haversine_matrix_km([p[1] for p in points], [p[0] for p in points])
        metres = [[km[s, t] * 1000 for t in targets] for s in sources]
        return {
            "code": "Ok",
            "distances": metres,
            "durations": [[m / 10 for m in row] for row in metres],
        }


@pytest.fixture
def osrm() -> Iterator[FakeOsrm]:
    server = FakeOsrm()
    yield server
    server.http.shutdown()


def test_osrm_tables_are_assembled_from_blocks_and_cached(osrm: FakeOsrm) -> None:
    client = OsrmTable(osrm.url, block=3)
    distances, durations = client.matrices(POINTS)
    km = haversine_matrix_km([p.lat for p in POINTS], [p.lon for p in POINTS])
    assert np.array_equal(distances, np.ceil(km * 1000).astype(np.int64))
    assert np.array_equal(durations, np.ceil(km * 100).astype(np.int64))
    assert len(osrm.requests) == 9  # 3 x 3 blocks of at most 3 points
    client.matrices(POINTS)
    assert len(osrm.requests) == 9


def test_an_osrm_error_is_raised_with_its_message() -> None:
    server = FakeOsrm(fail=True)
    try:
        with pytest.raises(OsrmError, match="Too many table coordinates"):
            OsrmTable(server.url).matrices(POINTS)
    finally:
        server.http.shutdown()


def test_an_unreachable_osrm_is_an_osrm_error() -> None:
    with pytest.raises(OsrmError, match="request failed"):
        OsrmTable("http://127.0.0.1:9", timeout_s=1).matrices(POINTS[:2])


@pytest.mark.parametrize("kind", ["great_circle", "osrm"])
def test_one_more_location_grows_the_matrices_as_a_full_rebuild_would(
    kind: str, osrm: FakeOsrm
) -> None:
    provider: TravelTimeProvider = (
        GreatCircle() if kind == "great_circle" else OsrmTable(osrm.url, block=3)
    )
    base, extra = POINTS[:-1], POINTS[-1]
    grown = with_location(provider, base, provider.matrices(base, 9 * 3600), extra, 9 * 3600)
    full = provider.matrices(POINTS, 9 * 3600)
    assert np.array_equal(grown[0], full[0]) and np.array_equal(grown[1], full[1])
    rows, _ = provider.between(POINTS[:2], POINTS[2:5], 9 * 3600)
    assert np.array_equal(rows, full[0][:2, 2:5])


def test_one_origin_asks_osrm_for_up_to_block_squared_targets_at_once(osrm: FakeOsrm) -> None:
    client = OsrmTable(osrm.url, block=2)  # OSRM bounds sources x destinations by 2 x 2
    distances, _ = client.between(POINTS[:1], POINTS[1:])
    assert len(osrm.requests) == 2  # 6 targets: 4, then 2
    km = haversine_matrix_km([p.lat for p in POINTS], [p.lon for p in POINTS])
    assert np.array_equal(distances[0], np.ceil(km[0, 1:] * 1000).astype(np.int64))
